"""Password reset by mail, against a real SMTP server running in-process."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient

from app.core.mail import init_mail
from app.database import db
from app.database.base import utcnow
from app.models import PasswordReset
from app.services.auth_service import RESET_SUBJECT
from config import ProductionConfig, TestingConfig
from tests.e2e.conftest import free_port
from tests.factories import PASSWORD, UserFactory
from tests.helpers import assert_problem

RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
NEW_PASSWORD = "a completely new password"


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def wait_for(self, count: int, seconds: float = 5) -> list[Any]:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


def use_mail_settings(app: Flask, **settings: Any) -> None:
    """Change the mail settings of a running app, as a restart with them would."""
    app.config.update(MAIL_BACKEND="", **settings)
    init_mail(app)


@pytest.fixture
def inbox(app: Flask) -> Iterator[Inbox]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    use_mail_settings(
        app, MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_DEFAULT_SENDER="parley@example.com"
    )
    yield handler
    controller.stop()


def token_from(message: Any) -> str:
    body = message.get_payload(decode=True).decode()
    match = re.search(r"^([A-Za-z0-9_-]{40,})\r?$", body, re.MULTILINE)
    assert match, body
    return match.group(1)


def test_reset_round_trip(client: FlaskClient, users: UserFactory, inbox: Inbox) -> None:
    bob = users.create("bob")
    old_refresh = bob.refresh_token
    response = client.post(RESET, json={"email": " BOB@example.com "})
    assert response.status_code == 202 and response.get_json() == {"status": "accepted"}
    [mail] = inbox.wait_for(1)
    assert mail["To"] == "bob@example.com" and mail["From"] == "parley@example.com"
    assert "reset" in mail["Subject"].lower()
    token = token_from(mail)
    # The reset token is for resets only.
    assert_problem(
        client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}), 401
    )
    assert_problem(client.post("/api/v1/auth/refresh", json={"refresh_token": token}), 401)

    assert (
        client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD}).status_code == 204
    )
    assert_problem(
        client.post("/api/v1/auth/login", json={"login": "bob", "password": PASSWORD}), 401
    )
    assert (
        client.post(
            "/api/v1/auth/login", json={"login": "bob", "password": NEW_PASSWORD}
        ).status_code
        == 200
    )
    assert_problem(client.get("/api/v1/users/me", headers=bob.headers), 401, "token_revoked")
    assert_problem(client.post("/api/v1/auth/refresh", json={"refresh_token": old_refresh}), 401)
    again = client.post(CONFIRM, json={"token": token, "new_password": "yet another password"})
    assert_problem(again, 400, "invalid_token")


def test_unknown_email_sends_nothing_and_answers_the_same(
    client: FlaskClient, users: UserFactory, inbox: Inbox
) -> None:
    users.create("bob", login=False)
    gone = users.create("gone")
    client.delete("/api/v1/users/me", json={"password": PASSWORD}, headers=gone.headers)
    known = client.post(RESET, json={"email": "bob@example.com"})
    unknown = client.post(RESET, json={"email": "nobody@example.com"})
    deactivated = client.post(RESET, json={"email": "gone@example.com"})
    for response in (unknown, deactivated):
        assert response.status_code == known.status_code == 202
        assert response.get_data() == known.get_data()
    time.sleep(0.5)
    assert [m["To"] for m in inbox.wait_for(1)] == ["bob@example.com"]


def test_expired_tampered_and_superseded_tokens_fail(
    app: Flask, client: FlaskClient, users: UserFactory, inbox: Inbox
) -> None:
    bob = users.create("bob")
    client.post(RESET, json={"email": "bob@example.com"})
    client.post(RESET, json={"email": "bob@example.com"})
    first, second = (token_from(m) for m in inbox.wait_for(2))
    assert_problem(
        client.post(
            CONFIRM,
            json={
                "token": first[:-1] + ("A" if first[-1] != "A" else "B"),
                "new_password": NEW_PASSWORD,
            },
        ),
        400,
        "invalid_token",
    )
    assert_problem(
        client.post(CONFIRM, json={"token": "not-a-token", "new_password": NEW_PASSWORD}),
        400,
        "invalid_token",
    )
    with app.app_context():
        db.session.execute(
            sa.update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert_problem(
        client.post(CONFIRM, json={"token": first, "new_password": NEW_PASSWORD}),
        400,
        "invalid_token",
    )
    with app.app_context():
        db.session.execute(
            sa.update(PasswordReset).values(expires_at=utcnow() + timedelta(hours=1))
        )
        db.session.commit()
    # A password change after the mail makes its token worthless.
    time.sleep(0.01)
    client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "changed in between"},
        headers=bob.headers,
    )
    assert_problem(
        client.post(CONFIRM, json={"token": second, "new_password": NEW_PASSWORD}),
        400,
        "invalid_token",
    )
    assert (
        client.post(
            "/api/v1/auth/login", json={"login": "bob", "password": "changed in between"}
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (RESET, {}),
        (RESET, {"email": "not an email"}),
        (RESET, {"email": "a@b.co", "extra": 1}),
        (CONFIRM, {"token": "x"}),
        (CONFIRM, {"token": "x", "new_password": "short"}),
        (CONFIRM, {"token": "", "new_password": NEW_PASSWORD}),
    ],
)
def test_invalid_bodies(client: FlaskClient, url: str, body: dict[str, object]) -> None:
    assert_problem(client.post(url, json=body), 422, "validation_error")


def test_mail_server_down_still_202_and_logged(
    app: Flask, client: FlaskClient, users: UserFactory, caplog: pytest.LogCaptureFixture
) -> None:
    users.create("bob", login=False)
    use_mail_settings(app, MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())
    logger = logging.getLogger("parley")
    logger.addHandler(caplog.handler)
    try:
        assert client.post(RESET, json={"email": "bob@example.com"}).status_code == 202
        deadline = time.monotonic() + 5
        while (
            not any("failed" in r.getMessage() for r in caplog.records)
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
    finally:
        logger.removeHandler(caplog.handler)
    assert any(r.name == "parley.mail" and "failed" in r.getMessage() for r in caplog.records)


def mail_log_of_a_reset(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    """Ask for bob's reset and return the one log record the mail path writes for it."""
    logger = logging.getLogger("parley")
    logger.addHandler(caplog.handler)
    try:
        assert client.post(RESET, json={"email": "bob@example.com"}).status_code == 202
        deadline = time.monotonic() + 5
        while not any(hasattr(r, "fields") for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        logger.removeHandler(caplog.handler)
    [record] = [r for r in caplog.records if r.name == "parley.mail" and hasattr(r, "fields")]
    return record


def test_without_mail_server_the_mail_is_logged(
    app: Flask, client: FlaskClient, users: UserFactory, caplog: pytest.LogCaptureFixture
) -> None:
    users.create("bob", login=False)
    use_mail_settings(app, MAIL_SERVER="", TESTING=False, MAIL_LOG_BODY=True)
    record = mail_log_of_a_reset(client, caplog)
    assert record.fields["to"] == "bob@example.com"  # type: ignore[attr-defined]
    assert "token" in record.fields["body"]  # type: ignore[attr-defined]


def test_production_never_logs_a_mail_body(
    app: Flask, client: FlaskClient, users: UserFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Without MAIL_SERVER, production logs that a mail was not sent, never its body (a token)."""
    assert ProductionConfig.MAIL_LOG_BODY is False and TestingConfig.MAIL_LOG_BODY is True
    users.create("bob", login=False)
    use_mail_settings(app, MAIL_SERVER="", TESTING=False, MAIL_LOG_BODY=False)
    record = mail_log_of_a_reset(client, caplog)
    assert record.levelname == "WARNING" and "not sent" in record.getMessage()
    fields = record.fields  # type: ignore[attr-defined]
    assert fields == {"to": "bob@example.com", "subject": RESET_SUBJECT}
