"""Outgoing mail through SMTP (the standard library's smtplib), or into the log in development."""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

log = logging.getLogger("parley.mail")


def build_message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """Build a plain-text mail."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


def send_mail(config: Mapping[str, Any], to: str, subject: str, body: str) -> bool:
    """Send one mail with the ``MAIL_*`` settings; return False (and log) when it failed.

    Without ``MAIL_SERVER`` the mail is written to the log instead when ``MAIL_LOG_BODY`` is on
    (development and tests); otherwise (production) only the fact that a mail was not sent is
    logged, without its body.
    """
    message = build_message(config["MAIL_DEFAULT_SENDER"], to, subject, body)
    if not config["MAIL_SERVER"]:
        if config.get("MAIL_LOG_BODY"):  # development: the log is the mailbox
            log.info(
                "mail (no MAIL_SERVER set)",
                extra={"fields": {"to": to, "subject": subject, "body": body}},
            )
            return True
        # A body can hold a secret (a reset token): it never reaches a production log.
        log.warning(
            "mail not sent: MAIL_SERVER is not set",
            extra={"fields": {"to": to, "subject": subject}},
        )
        return False
    try:
        with smtplib.SMTP(config["MAIL_SERVER"], int(config["MAIL_PORT"]), timeout=10) as smtp:
            if config["MAIL_USE_TLS"]:
                smtp.starttls()
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            smtp.send_message(message)
        return True
    except (OSError, smtplib.SMTPException) as error:
        log.error("mail to %s failed: %s", to, error)
        return False


def send_mail_later(
    config: Mapping[str, Any], to: str, subject: str, body: str
) -> threading.Thread:
    """Send a mail from a background thread, so the request's timing does not depend on SMTP."""
    settings = {key: config[key] for key in config if key.startswith("MAIL_")}
    thread = threading.Thread(
        target=send_mail, args=(settings, to, subject, body), name="parley-mail", daemon=True
    )
    thread.start()
    return thread
