"""Conversation and message services: the database constraints behind the lookups."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask

from app.core.errors import ConflictError, NotFoundError
from app.crud import conversation_crud
from app.database import db
from app.database.connection import transactional
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


def test_a_retried_send_returns_the_original_without_a_gap(app: Flask, users: UserFactory) -> None:
    alice, bob = users.create("alice", login=False), users.create("bob", login=False)
    with app.app_context():
        conversation, _ = conversation_service.start_direct(alice.id, bob.id)
        original, created = message_service.send_message(conversation["id"], alice.id, "hi", "k1")
        assert created
    # The retry's insert hits the unique client_id: its seq bump rolls back with it.
    with app.app_context():
        replay, created = message_service.send_message(conversation["id"], alice.id, "hi", "k1")
        assert not created and (replay["id"], replay["seq"]) == (original["id"], original["seq"])
        with pytest.raises(ConflictError):
            message_service.send_message(conversation["id"], alice.id, "different", "k1")
        assert conversation_service.get_conversation(conversation["id"], alice.id)["last_seq"] == 1
        following, created = message_service.send_message(
            conversation["id"], alice.id, "next", "k2"
        )
        assert created and following["seq"] == 2


def test_a_send_waits_for_its_turn_without_a_connection(app: Flask, users: UserFactory) -> None:
    alice, bob = users.create("alice", login=False), users.create("bob", login=False)
    with app.app_context():
        conversation, _ = conversation_service.start_direct(alice.id, bob.id)
    conversation_id = conversation["id"]
    result: dict[str, object] = {}

    def send() -> None:
        with app.app_context():
            user_service.get_active_user(alice.id)  # a read first, as the token check does
            result["message"], _ = message_service.send_message(
                conversation_id, alice.id, "hi", None
            )

    with app.app_context():
        pool = db.engine.pool
    with message_service.send_queue.turn(conversation_id) as mine:
        assert mine
        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(0.2)
        assert sender.is_alive() and "message" not in result  # queued behind this turn
        assert pool.checkedout() == 0  # and holding no pooled connection meanwhile
    sender.join(10)
    assert result["message"]["seq"] == 1  # type: ignore[index]


def test_a_send_waiting_for_the_lock_sees_its_sender_removed(
    app: Flask, users: UserFactory
) -> None:
    alice, bob = users.create("alice", login=False), users.create("bob", login=False)
    with app.app_context():
        group = conversation_service.create_group(alice.id, "g", [bob.id])
    group_id = group["id"]
    removal_holds_the_lock, finish_removal = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    @transactional
    def remove_bob_slowly() -> None:
        conversation_crud.lock_membership(group_id, alice.id)
        member = conversation_crud.get_member(group_id, bob.id)
        assert member is not None
        conversation_crud.delete_member(member)
        removal_holds_the_lock.set()
        finish_removal.wait(10)

    def remover() -> None:
        with app.app_context():
            remove_bob_slowly()

    def bob_sends() -> None:
        with app.app_context():
            try:
                message_service.send_message(group_id, bob.id, "after removal", None)
                outcome["result"] = "stored"
            except NotFoundError:
                outcome["result"] = "404"

    removing = threading.Thread(target=remover)
    removing.start()
    assert removal_holds_the_lock.wait(10)
    sending = threading.Thread(target=bob_sends)
    sending.start()
    time.sleep(0.3)  # the send now waits for the conversation (row lock, or SQLite's write lock)
    finish_removal.set()
    removing.join(10)
    sending.join(10)
    assert outcome["result"] == "404"
    with app.app_context():
        conversation = conversation_service.get_conversation(group_id, alice.id)
        assert conversation["last_seq"] == 0  # no message, and no seq taken
