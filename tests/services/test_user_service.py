"""User service rules, including races that a lookup alone cannot stop."""

from __future__ import annotations

import pytest
from flask import Flask

from app.core.errors import ConflictError
from app.crud import user_crud
from app.services import user_service
from tests.factories import PASSWORD, UserFactory


def test_lost_registration_race_is_a_conflict(
    app: Flask, users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    users.create("bob", login=False)
    # Another request registered "bob" between the check and the insert: the unique
    # constraint is what stops the duplicate.
    monkeypatch.setattr(user_crud, "email_or_username_taken", lambda *a, **k: (False, False))
    with app.app_context(), pytest.raises(ConflictError):
        user_service.create_user("bob2@example.com", "BOB", PASSWORD)


def test_lost_rename_race_is_a_conflict(
    app: Flask, users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    users.create("alice", login=False)
    bob = users.create("bob", login=False)
    monkeypatch.setattr(user_crud, "email_or_username_taken", lambda *a, **k: (False, False))
    with app.app_context():
        with pytest.raises(ConflictError):
            user_service.update_profile(bob.id, username="Alice")
        assert user_service.get_active_user(bob.id).username == "bob"
