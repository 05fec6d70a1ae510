"""Outgoing mail, through Flask-Mailman: SMTP when ``MAIL_SERVER`` is set, the log otherwise.

Bodies are Jinja templates under ``app/templates/mail/``. A mail leaves from a background thread
after the request's transaction commits, so the reply never waits for SMTP (whose speed would
otherwise tell known addresses from unknown ones), and a mail server that is down only produces a
logged error.

The backend (Flask-Mailman's ``MAIL_BACKEND``) follows from the settings unless it is set:
``smtp`` with a ``MAIL_SERVER``; without one, :class:`LogEmailBackend` in development (the log
is the mailbox) and :class:`UnsentEmailBackend` in production (a body can hold a secret, such as
a reset token, and never reaches a production log); Flask-Mailman's in-memory ``locmem`` in
tests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from flask import Flask, current_app, render_template
from flask_mailman import EmailMessage, Mail
from flask_mailman.backends.base import BaseEmailBackend

log = logging.getLogger("parley.mail")

mail = Mail()


class LogEmailBackend(BaseEmailBackend):
    """Development without ``MAIL_SERVER``: each mail is written to the log, whole."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Log each mail with its recipients, subject and body."""
        for message in email_messages:
            fields = {"to": ", ".join(message.to), "subject": message.subject, "body": message.body}
            log.info("mail (no MAIL_SERVER set)", extra={"fields": fields})
        return len(email_messages)


class UnsentEmailBackend(BaseEmailBackend):
    """Production without ``MAIL_SERVER``: nothing is sent, and only that fact is logged."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Log that each mail was not sent (recipients and subject, never the body)."""
        for message in email_messages:
            fields = {"to": ", ".join(message.to), "subject": message.subject}
            log.warning("mail not sent: MAIL_SERVER is not set", extra={"fields": fields})
        return 0


def init_mail(app: Flask) -> None:
    """Choose the mail backend from the settings (unless ``MAIL_BACKEND`` names one), bind it."""
    if not app.config.get("MAIL_BACKEND"):
        if app.config["MAIL_SERVER"]:
            app.config["MAIL_BACKEND"] = "smtp"
        elif app.testing:
            app.config["MAIL_BACKEND"] = "locmem"
        elif app.config["MAIL_LOG_BODY"]:
            app.config["MAIL_BACKEND"] = f"{__name__}.LogEmailBackend"
        else:
            app.config["MAIL_BACKEND"] = f"{__name__}.UnsentEmailBackend"
            log.warning("MAIL_SERVER is not set: password-reset mail is not sent (nor logged)")
    app.config.setdefault("MAIL_TIMEOUT", 10)
    mail.init_app(app)


def compose(to: str, subject: str, template: str, **context: Any) -> EmailMessage:
    """Build a plain-text mail from a template under ``templates/mail/``."""
    body = render_template(f"mail/{template}", **context)
    return EmailMessage(subject=subject, body=body, to=[to])


def send_later(message: EmailMessage) -> threading.Thread:
    """Send a mail from a background thread; a failure is logged, never raised."""
    context = current_app.app_context()  # the same app, for the thread

    def send() -> None:
        with context:
            try:
                message.send()
            except Exception as error:  # SMTP down, refused, timed out: the reply went out
                log.error("mail to %s failed: %s", ", ".join(message.to), error)

    thread = threading.Thread(target=send, name="parley-mail", daemon=True)
    thread.start()
    return thread
