"""``POST /conversations/{id}/typing``: members only, throttled, to open streams, never logged."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app.core.peer import Listener
from app.services import event_service
from tests.factories import Chat, UserFactory
from tests.helpers import assert_problem

URL = "/api/v1/conversations"


def attach(app: Flask, user_id: int) -> Listener:
    """An open stream's listener for the user, in this process (subscribed, with Redis)."""
    with app.app_context():
        hub = event_service.waker()
        listener = hub.attach(user_id, ephemeral=True)
        deadline = time.monotonic() + 5
        while hub.redis_url and not hub.redis_healthy and time.monotonic() < deadline:
            time.sleep(0.01)
        return listener


def received(listener: Listener, seconds: float = 5) -> list[tuple[str, Mapping[str, Any]]]:
    """What reached the listener (through Redis, it takes a moment)."""
    deadline = time.monotonic() + seconds
    while not listener.inbox and time.monotonic() < deadline:
        time.sleep(0.01)
    return listener.take_ephemeral()


def test_typing_goes_to_the_other_members_open_streams(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
    group = chat.group(alice, bob)
    streams = {u.id: attach(app, u.id) for u in (alice, bob, carol)}
    try:
        before = client.get("/api/v1/events", headers=bob.headers).get_json()["next"]
        response = client.post(f"{URL}/{group['id']}/typing", headers=alice.headers)
        assert response.status_code == 204 and response.data == b""
        assert received(streams[bob.id]) == [
            ("typing", {"conversation_id": group["id"], "user_id": alice.id, "expires_in": 6})
        ]
        assert streams[alice.id].take_ephemeral() == []  # not the typist
        assert streams[carol.id].take_ephemeral() == []  # never a non-member
        # A repeat within 2 s is accepted and not broadcast.
        assert client.post(f"{URL}/{group['id']}/typing", headers=alice.headers).status_code == 204
        assert received(streams[bob.id]) == []
        # Never in the durable log.
        page = client.get(f"/api/v1/events?since={before}", headers=bob.headers).get_json()
        assert page["events"] == []
    finally:
        with app.app_context():
            for listener in streams.values():
                event_service.waker().detach(listener)


def test_typing_in_a_conversation_one_is_not_in_is_404(
    client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
    direct = chat.direct(alice, bob)
    assert_problem(client.post(f"{URL}/{direct['id']}/typing", headers=carol.headers), 404)
    assert_problem(client.post(f"{URL}/999999/typing", headers=alice.headers), 404)
    assert_problem(client.post(f"{URL}/{direct['id']}/typing"), 401)
