"""The ``flask`` commands: users create, seed, auth prune, and the shell context."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from app.database import db
from app.database.base import utcnow
from app.models import AuthSession, Message, RefreshToken, User
from tests.factories import UserFactory


def test_users_create_reads_the_password_from_stdin(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "root", "Root@Example.com", "--admin"],
        input="a long admin password\n",
    )
    assert result.exit_code == 0, result.output
    assert "created admin root" in result.output
    client = app.test_client()
    login = client.post(
        "/api/v1/auth/login",
        json={"login": "root@example.com", "password": "a long admin password"},
    )
    assert login.status_code == 200
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    assert client.get("/api/v1/admin/users", headers=headers).status_code == 200


def test_users_create_rejects_bad_input_and_duplicates(app: Flask) -> None:
    runner = app.test_cli_runner()
    bad = runner.invoke(args=["users", "create", "x", "not-an-email"], input="short\n")
    assert bad.exit_code != 0 and "invalid input" in bad.output
    ok = runner.invoke(
        args=["users", "create", "bob", "bob@example.com"], input="a long password 1\n"
    )
    assert ok.exit_code == 0 and "created user bob" in ok.output
    again = runner.invoke(
        args=["users", "create", "BOB", "other@example.com"], input="a long password 1\n"
    )
    assert again.exit_code != 0 and "taken" in again.output


def test_seed_is_idempotent_and_prints_logins(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0
    assert "login=alice password=" in first.output
    assert "conversations: direct #" in first.output
    second = runner.invoke(args=["seed"])
    assert second.exit_code == 0 and "exists" in second.output
    # Seeding again doubles nothing: same conversations, no second copy of a message.
    assert second.output.splitlines()[-1] == first.output.splitlines()[-1]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 7
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 4
    password = first.output.split("password=")[1].split()[0]
    assert (
        app.test_client()
        .post("/api/v1/auth/login", json={"login": "bob", "password": password})
        .status_code
        == 200
    )


def test_auth_prune_deletes_dead_sessions_only(app: Flask, users: UserFactory) -> None:
    live = users.create("live")
    dead = users.create("dead")
    expired = users.create("expired")
    app.test_client().post("/api/v1/auth/logout", headers=dead.headers)
    with app.app_context():
        db.session.execute(
            sa.update(AuthSession)
            .where(AuthSession.user_id == expired.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["auth", "prune"])
    assert result.exit_code == 0 and "pruned 2 session(s)" in result.output
    with app.app_context():
        remaining = db.session.scalars(sa.select(AuthSession.user_id)).all()
        tokens = db.session.scalar(sa.select(sa.func.count()).select_from(RefreshToken))
    assert remaining == [live.id] and tokens == 1
    assert app.test_client().get("/api/v1/users/me", headers=live.headers).status_code == 200


def test_shell_context(app: Flask) -> None:
    with app.app_context():
        context = app.make_shell_context()
    for name in ("db", "sa", "User", "AuthSession", "RefreshToken", "Conversation", "Message"):
        assert name in context, name
    services = Path(__file__).resolve().parents[1] / "app" / "services"
    for module in services.glob("*_service.py"):  # every service module, as the README says
        assert context[module.stem].__name__ == f"app.services.{module.stem}"


def test_a_shell_write_waits_for_commit_and_rolls_back(
    app: Flask, users: UserFactory, is_postgres: bool
) -> None:
    """In the shell (no request), a write outside a service is not committed by itself."""
    bob = users.create("bob", login=False)
    with app.app_context():
        db.session.execute(sa.update(User).where(User.id == bob.id).values(display_name="oops"))
        db.session.rollback()
        assert db.session.get(User, bob.id).display_name == "bob"
        db.session.execute(sa.update(User).where(User.id == bob.id).values(display_name="kept"))
        db.session.commit()
    with app.app_context():
        assert db.session.get(User, bob.id).display_name == "kept"


def test_users_create_prompts_on_a_terminal(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.cli._stdin_is_terminal", lambda: True)
    monkeypatch.setattr("app.cli.click.prompt", lambda *a, **k: "typed at the prompt", raising=True)
    result = app.test_cli_runner().invoke(
        args=["users", "create", "eve", "eve@example.com", "--display-name", "Eve E."]
    )
    assert result.exit_code == 0, result.output
    login = app.test_client().post(
        "/api/v1/auth/login", json={"login": "eve", "password": "typed at the prompt"}
    )
    assert login.status_code == 200
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    assert (
        app.test_client().get("/api/v1/users/me", headers=headers).get_json()["display_name"]
        == "Eve E."
    )
