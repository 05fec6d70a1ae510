"""Conversation and message services: the database constraints behind the lookups."""

from __future__ import annotations

import pytest
from flask import Flask

from app.core.errors import ConflictError, NotFoundError
from app.crud import conversation_crud, message_crud
from app.services import conversation_service, message_service, user_service
from tests.factories import UserFactory


def test_lost_direct_race_returns_the_winner(
    app: Flask, users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = users.create("alice", login=False), users.create("bob", login=False)
    with app.app_context():
        first, created = conversation_service.start_direct(alice.id, bob.id)
        assert created
    real = conversation_crud.get_direct_conversation
    calls = {"n": 0}

    def blind_first_lookup(key: str):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return None if calls["n"] == 1 else real(key)

    # The lookup misses the winner's row, as in a race: the unique pair key stops the insert.
    monkeypatch.setattr(conversation_crud, "get_direct_conversation", blind_first_lookup)
    with app.app_context():
        second, created = conversation_service.start_direct(bob.id, alice.id)
    assert not created and second["id"] == first["id"]


def test_lost_send_race_returns_the_original(
    app: Flask, users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = users.create("alice", login=False), users.create("bob", login=False)
    with app.app_context():
        conversation, _ = conversation_service.start_direct(alice.id, bob.id)
        original, created = message_service.send_message(conversation["id"], alice.id, "hi", "k1")
        original_id, original_seq = original["id"], original["seq"]
    real = message_crud.get_by_client_id
    calls = {"n": 0}

    def blind_first_lookup(*args: object):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return None if calls["n"] == 1 else real(*args)  # type: ignore[arg-type]

    # The client_id check misses the first copy: the unique constraint catches the duplicate.
    monkeypatch.setattr(message_crud, "get_by_client_id", blind_first_lookup)
    with app.app_context():
        replay, created = message_service.send_message(conversation["id"], alice.id, "hi", "k1")
        assert not created and (replay["id"], replay["seq"]) == (original_id, original_seq)
        calls["n"] = 0
        with pytest.raises(ConflictError):
            message_service.send_message(conversation["id"], alice.id, "different", "k1")
        assert conversation_service.get_conversation(conversation["id"], alice.id)["last_seq"] == 1


def test_find_helpers(app: Flask, users: UserFactory) -> None:
    alice = users.create("alice", login=False)
    with app.app_context():
        assert user_service.find_user("ALICE").id == alice.id
        with pytest.raises(NotFoundError):
            user_service.find_user("nobody")
        assert conversation_service.find_group(alice.id, "none") is None
        assert user_service.public_profiles([]) == {}
