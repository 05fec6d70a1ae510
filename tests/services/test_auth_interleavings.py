"""Logins, password changes, resets and deactivations that overlap: whatever commits in the gap
between a password check and the write that acts on it, no session that should be dead is left
usable. And on SQLite, the slow password hash runs outside the database's one write lock.

Each test runs the interfering change at the worst moment, from a second app context (its own
session and connection), as another request would: right after the password was checked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.core import security
from app.services import auth_service, conversation_service, message_service, user_service
from tests.conftest import make_app
from tests.factories import PASSWORD, ApiUser, UserFactory
from tests.helpers import assert_problem

NEW_PASSWORD = "a brand new passphrase"
ME = "/api/v1/users/me"


@contextmanager
def after_password_check(
    monkeypatch: pytest.MonkeyPatch, name: str, interfere: Callable[[], None]
) -> Iterator[None]:
    """Run ``interfere`` once, right after ``user_service.<name>`` checked a password."""
    original = getattr(user_service, name)
    done: list[bool] = []

    def checked_then_interfered(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if not done:
            done.append(True)
            interfere()
        return result

    monkeypatch.setattr(user_service, name, checked_then_interfered)
    yield
    assert done, f"{name} was never called"


def in_other_context(app: Flask, action: Callable[[], object]) -> Callable[[], None]:
    """An action run as another request would: its own app context, session and connection."""

    def run() -> None:
        with app.app_context():
            action()

    return run


def login(client: FlaskClient, user: ApiUser, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"login": user.username, "password": password})


def assert_no_live_session(client: FlaskClient, user: ApiUser) -> None:
    """Every token the user was ever given is refused now."""
    assert_problem(client.get(ME, headers=user.headers), 401)
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert_problem(refreshed, 401)


def test_login_racing_an_admin_deactivation_gets_no_session(
    app: Flask, client: FlaskClient, users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, bob = users.create("root", admin=True), users.create("bob", login=False)
    deactivate = in_other_context(
        app, lambda: auth_service.update_account_as_admin(admin.id, bob.id, is_active=False)
    )
    with after_password_check(monkeypatch, "verify_credentials", deactivate):
        response = login(client, bob)
    assert_problem(response, 401, "invalid_credentials")


def test_login_racing_a_password_change_gets_no_session(
    app: Flask, client: FlaskClient, users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = users.create("bob")
    change = in_other_context(
        app,
        lambda: auth_service.change_password(bob.id, 0, PASSWORD, NEW_PASSWORD),
    )
    with after_password_check(monkeypatch, "verify_credentials", change):
        response = login(client, bob)  # with the old password, checked before the change
    assert_problem(response, 401, "invalid_credentials")
    assert_no_live_session(client, bob)
    assert login(client, bob, NEW_PASSWORD).status_code == 200


def test_login_racing_a_reset_confirmation_gets_no_session(
    app: Flask, client: FlaskClient, users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = users.create("bob")
    with app.app_context():
        token = issue_reset_token(monkeypatch, bob.email)
    confirm = in_other_context(
        app, lambda: auth_service.confirm_password_reset(token, NEW_PASSWORD)
    )
    with after_password_check(monkeypatch, "verify_credentials", confirm):
        response = login(client, bob)
    assert_problem(response, 401, "invalid_credentials")
    assert_no_live_session(client, bob)


def test_a_login_that_commits_first_is_revoked_by_the_deactivation(
    client: FlaskClient, users: UserFactory
) -> None:
    """The other order: the session exists when the deactivation revokes, so it is revoked."""
    admin, bob = users.create("root", admin=True), users.create("bob", login=False)
    users.login(bob)
    assert (
        client.patch(
            f"/api/v1/admin/users/{bob.id}", json={"is_active": False}, headers=admin.headers
        ).get_json()["is_active"]
        is False
    )
    assert_no_live_session(client, bob)


def test_password_change_racing_another_keeps_only_the_first(
    app: Flask, client: FlaskClient, users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = users.create("bob")
    other = in_other_context(
        app, lambda: auth_service.change_password(bob.id, 0, PASSWORD, "the other new one!")
    )
    with after_password_check(monkeypatch, "verify_password", other):
        response = client.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=bob.headers,
        )
    # The password it checked is no longer the password: refused, and nothing of it stored.
    assert_problem(response, 403, "invalid_credentials")
    assert login(client, bob, "the other new one!").status_code == 200
    assert login(client, bob, NEW_PASSWORD).status_code == 401


def test_self_deletion_racing_a_password_change_is_refused(
    app: Flask, client: FlaskClient, users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = users.create("bob")
    change = in_other_context(
        app, lambda: auth_service.change_password(bob.id, 0, PASSWORD, NEW_PASSWORD)
    )
    with after_password_check(monkeypatch, "verify_password", change):
        response = client.delete(ME, json={"password": PASSWORD}, headers=bob.headers)
    assert_problem(response, 403, "invalid_credentials")
    assert login(client, bob, NEW_PASSWORD).status_code == 200  # still active


@pytest.fixture
def impatient(database_url: str, _schema: None) -> Iterator[Flask]:
    """An app whose SQLite writers give up on the write lock after a tenth of a second."""
    from tests.conftest import clean_database

    application = make_app(database_url, SQLITE_BUSY_TIMEOUT=0.1)
    yield application
    clean_database(application)


def slow_hash_that_sends(
    monkeypatch: pytest.MonkeyPatch, app: Flask, sender: ApiUser, conversation_id: int
) -> list[int]:
    """Make every password hash or check send a message meanwhile, as a concurrent request would.

    If the hash ran inside a write transaction, SQLite's write lock would be held, and the send
    would wait for it past its busy timeout and fail.
    """
    sent: list[int] = []
    hash_password, verify_password = security.hash_password, security.verify_password

    def send() -> None:
        with app.app_context():
            message, _ = message_service.send_message(conversation_id, sender.id, "meanwhile", None)
            sent.append(message["seq"])

    def hashing(*args: Any) -> str:
        send()
        return hash_password(*args)

    def verifying(*args: Any) -> bool:
        send()
        return verify_password(*args)

    monkeypatch.setattr(security, "hash_password", hashing)
    monkeypatch.setattr(security, "verify_password", verifying)
    return sent


@pytest.mark.parametrize("operation", ["login", "failed-login", "register", "change", "reset"])
def test_password_hashing_holds_no_write_lock(
    impatient: Flask, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    client = impatient.test_client()
    users = UserFactory(impatient, client)
    alice, bob = users.create("alice"), users.create("bob")
    with impatient.app_context():
        conversation = conversation_service.start_direct(alice.id, bob.id)[0]
    reset_token = ""
    if operation == "reset":
        with impatient.app_context():
            reset_token = issue_reset_token(monkeypatch, bob.email)
    sent = slow_hash_that_sends(monkeypatch, impatient, alice, conversation["id"])
    if operation == "login":
        assert login(client, bob).status_code == 200
    elif operation == "failed-login":
        assert login(client, bob, "not the password").status_code == 401
    elif operation == "register":
        body = {"email": "carol@example.com", "username": "carol", "password": PASSWORD}
        assert client.post("/api/v1/auth/register", json=body).status_code == 201
    elif operation == "change":
        body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        response = client.post("/api/v1/auth/password", json=body, headers=bob.headers)
        assert response.status_code == 204
    else:
        body = {"token": reset_token, "new_password": NEW_PASSWORD}
        assert client.post("/api/v1/auth/password-reset/confirm", json=body).status_code == 204
    assert sent, "the password was never hashed or checked"


def issue_reset_token(monkeypatch: pytest.MonkeyPatch, email: str) -> str:
    """Request a reset for ``email`` and return the token its mail would carry."""
    bodies: list[str] = []
    with monkeypatch.context() as patch:
        patch.setattr("app.core.mail.send_later", lambda message: bodies.append(message.body))
        auth_service.request_password_reset(email)
    return next(line.strip() for line in bodies[0].splitlines() if len(line.strip()) == 43)
