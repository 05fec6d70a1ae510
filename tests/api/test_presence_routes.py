"""Presence: ``GET /conversations/{id}/presence``, ``presence`` events and ``show_presence``."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.database import db
from app.models import AuthSession
from tests.api.test_query_counts import counting
from tests.conftest import clean_database, make_app
from tests.factories import ApiUser, Chat, UserFactory
from tests.helpers import assert_problem

URL = "/api/v1/conversations"
TIMEOUT = 1.5  # PRESENCE_TIMEOUT_SECONDS of these tests


@pytest.fixture
def app(database_url: str, _schema: None) -> Iterator[Flask]:
    """Presence with a short timeout; events within this process (no Redis: deterministic)."""
    application = make_app(
        database_url,
        PRESENCE_TIMEOUT_SECONDS=TIMEOUT,
        EVENTS_KEEPALIVE_SECONDS=0.2,
        REDIS_URL="",
        REDIS_PREFIX=f"parley-test-{uuid.uuid4().hex}",
    )
    yield application
    clean_database(application)


class Stream:
    """An open ``/events/stream`` of one user, read as SSE blocks on a thread of its own.

    (Flask pushes a streaming response's request context while it runs: two streams read in
    turns on one thread would pop each other's.)
    """

    def __init__(self, app: Flask, user: ApiUser) -> None:
        self.blocks: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        opened = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(app, user, opened), daemon=True)
        self._thread.start()
        assert opened.wait(5), "the stream did not open"

    def _read(self, app: Flask, user: ApiUser, opened: threading.Event) -> None:
        response = app.test_client().get(
            "/api/v1/events/stream", headers=user.headers, buffered=False
        )
        try:
            assert response.status_code == 200
            for chunk in response.response:  # keep-alives come every 0.2 s
                if chunk.startswith(b"retry:"):
                    opened.set()  # the stream is open and counted
                else:
                    self.blocks.put(chunk.decode())
                if self._stop.is_set():
                    return
        finally:
            response.close()

    def events(self, type: str, seconds: float = 5.0, count: int = 1) -> list[str]:
        """The SSE blocks of events of ``type`` that arrive within ``seconds`` (up to ``count``)."""
        found: list[str] = []
        deadline = time.monotonic() + seconds
        while len(found) < count and (left := deadline - time.monotonic()) > 0:
            try:
                block = self.blocks.get(timeout=left)
            except queue.Empty:
                break
            if f"event: {type}\n" in block:
                found.append(block)
        return found

    def presence(self, seconds: float = 5.0, count: int = 1) -> list[dict[str, Any]]:
        """The ``presence`` events that arrive within ``seconds`` (up to ``count`` of them)."""
        blocks = self.events("presence", seconds, count)
        assert not any("id:" in block for block in blocks)  # ephemeral: no cursor
        return [json.loads(block.split("data: ", 1)[1]) for block in blocks]

    def ended(self, seconds: float) -> bool:
        """Whether the server ends the stream within ``seconds``."""
        self._thread.join(seconds)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Close the stream (its connection ends on the server)."""
        self._stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive()


def presence(client: FlaskClient, user: ApiUser, conversation_id: int) -> dict[int, Any]:
    response = client.get(f"{URL}/{conversation_id}/presence", headers=user.headers)
    assert response.status_code == 200
    return {item.pop("user_id"): item for item in response.get_json()["items"]}


def seen(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["last_seen_at"].replace("Z", "+00:00"))


def test_members_go_online_with_an_event_connection_and_offline_after_it(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
    group = chat.group(alice, bob)
    assert presence(client, alice, group["id"]) == {
        alice.id: {"status": "offline", "last_seen_at": None},
        bob.id: {"status": "offline", "last_seen_at": None},
    }
    cursor = client.get("/api/v1/events", headers=alice.headers).get_json()["next"]
    watching, outsider = Stream(app, alice), Stream(app, carol)
    bobs = second = None
    try:
        bobs = Stream(app, bob)
        [online] = watching.presence()
        assert online["user_id"] == bob.id and online["status"] == "online"
        assert outsider.presence(seconds=0.5) == []  # carol shares no conversation with bob
        now = presence(client, alice, group["id"])
        assert now[bob.id]["status"] == now[alice.id]["status"] == "online"
        assert seen(now[bob.id]) >= seen(online)  # refreshed while connected
        second = Stream(app, bob)  # a second connection of an online user: no news
        assert watching.presence(seconds=0.5) == []
        time.sleep(TIMEOUT * 1.5)  # still connected: refreshed, still online
        assert presence(client, alice, group["id"])[bob.id]["status"] == "online"
        second.close()
        assert watching.presence(seconds=TIMEOUT + 0.5) == []  # one connection is left
        closed_at = time.time()
        bobs.close()
        [offline] = watching.presence(seconds=TIMEOUT + 3)
        assert offline["user_id"] == bob.id and offline["status"] == "offline"
        assert time.time() - closed_at >= TIMEOUT  # online for the timeout after the last one
        assert abs(seen(offline).timestamp() - closed_at) < 1
        after = presence(client, alice, group["id"])[bob.id]
        assert after == {"status": "offline", "last_seen_at": offline["last_seen_at"]}
        # Presence never enters the durable log.
        page = client.get(f"/api/v1/events?since={cursor}", headers=alice.headers).get_json()
        assert page["events"] == []
    finally:
        for stream in (watching, outsider, bobs, second):
            if stream is not None:
                stream.close()


def test_a_waiting_long_poll_is_an_event_connection_too(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob = users.create("alice"), users.create("bob")
    direct = chat.direct(alice, bob)
    cursor = client.get("/api/v1/events", headers=bob.headers).get_json()["next"]
    watching = Stream(app, alice)
    try:
        waiter = threading.Thread(
            target=lambda: app.test_client().get(
                f"/api/v1/events?since={cursor}&timeout=3", headers=bob.headers
            )
        )
        waiter.start()
        [online] = watching.presence()
        assert online["user_id"] == bob.id and online["status"] == "online"
        assert presence(client, alice, direct["id"])[bob.id]["status"] == "online"
        waiter.join(10)
        [offline] = watching.presence(seconds=TIMEOUT + 3)
        assert offline["user_id"] == bob.id and offline["status"] == "offline"
    finally:
        watching.close()


def test_show_presence_false_is_offline_and_never_seen_to_everyone_else(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob = users.create("alice"), users.create("bob")
    direct = chat.direct(alice, bob)
    me = client.get("/api/v1/users/me", headers=bob.headers).get_json()
    assert me["show_presence"] is True
    hidden = client.patch("/api/v1/users/me", json={"show_presence": False}, headers=bob.headers)
    assert hidden.status_code == 200 and hidden.get_json()["show_presence"] is False
    watching = Stream(app, alice)
    bobs = None
    try:
        bobs = Stream(app, bob)
        assert watching.presence(seconds=0.5) == []  # not announced
        assert presence(client, alice, direct["id"])[bob.id] == {
            "status": "offline",
            "last_seen_at": None,
        }
        own = presence(client, bob, direct["id"])[bob.id]  # bob sees himself as he is
        assert own["status"] == "online" and own["last_seen_at"] is not None
        # Turning it on while connected is announced as coming online, and off as going away.
        shown = client.patch("/api/v1/users/me", json={"show_presence": True}, headers=bob.headers)
        assert shown.get_json()["show_presence"] is True
        [online] = watching.presence()
        assert online["user_id"] == bob.id and online["status"] == "online"
        assert online["last_seen_at"] is not None
        client.patch("/api/v1/users/me", json={"show_presence": False}, headers=bob.headers)
        [gone] = watching.presence()
        assert gone == {"user_id": bob.id, "status": "offline", "last_seen_at": None}
        # Unchanged: nothing to tell.
        client.patch("/api/v1/users/me", json={"show_presence": False}, headers=bob.headers)
        assert watching.presence(seconds=0.5) == []
        bobs.close()
        assert watching.presence(seconds=TIMEOUT + 1) == []  # nor when he goes
        assert (
            client.get("/api/v1/users/me", headers=bob.headers).get_json()["show_presence"] is False
        )
    finally:
        watching.close()
        if bobs is not None:
            bobs.close()


def test_presence_answers_members_only(client: FlaskClient, users: UserFactory, chat: Chat) -> None:
    alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
    direct = chat.direct(alice, bob)
    assert_problem(client.get(f"{URL}/{direct['id']}/presence", headers=carol.headers), 404)
    assert_problem(client.get(f"{URL}/999999/presence", headers=alice.headers), 404)
    assert_problem(client.get(f"{URL}/{direct['id']}/presence"), 401)
    for bad in ("yes", 1, None, "false"):
        response = client.patch(
            "/api/v1/users/me", json={"show_presence": bad}, headers=bob.headers
        )
        assert_problem(response, 422)
    assert client.get("/api/v1/users/me", headers=bob.headers).get_json()["show_presence"] is True


def test_presence_events_skip_conversations_over_the_size_limit(
    database_url: str, _schema: None
) -> None:
    app = make_app(
        database_url,
        PRESENCE_TIMEOUT_SECONDS=TIMEOUT,
        PRESENCE_EVENTS_MAX_MEMBERS=3,
        EVENTS_KEEPALIVE_SECONDS=0.2,
        REDIS_URL="",
        REDIS_PREFIX=f"parley-test-{uuid.uuid4().hex}",
    )
    try:
        client = app.test_client()
        users, chat = UserFactory(app, client), Chat(client)
        alice, bob, carol, dave = (users.create(n) for n in ("alice", "bob", "carol", "dave"))
        big = chat.group(alice, bob, carol, dave)  # 4 members: over the limit of 3
        chat.direct(alice, bob)
        alices, carols = Stream(app, alice), Stream(app, carol)
        try:
            bobs = Stream(app, bob)
            [online] = alices.presence()  # through the direct conversation
            assert online["user_id"] == bob.id and online["status"] == "online"
            assert carols.presence(seconds=0.5) == []  # they share only the big group
            state = presence(client, carol, big["id"])  # which still answers for everyone
            assert state[bob.id]["status"] == state[carol.id]["status"] == "online"
            assert state[dave.id]["status"] == "offline"
            bobs.close()
        finally:
            alices.close()
            carols.close()
    finally:
        clean_database(app)


def test_idle_streams_cost_the_database_nothing_per_stream(
    app: Flask, client: FlaskClient, users: UserFactory
) -> None:
    people = [users.create(f"user{i}") for i in range(3)]
    streams = [Stream(app, person) for person in people for _ in range(3)]
    try:
        time.sleep(0.5)  # the openings' own statements are done
        with counting(app) as statements:
            time.sleep(2.0)  # ten keep-alives on each of 9 streams
        # Per process, not per stream: the heartbeat and the session sweep (every 0.5 s here),
        # and the database poller of waiting readers (every second, no Redis here).
        assert len(statements) <= 3 * 4 + 3, statements
    finally:
        for stream in streams:
            stream.close()


def test_a_session_revoked_while_wake_ups_are_lost_ends_its_streams_at_the_sweep(
    app: Flask, users: UserFactory
) -> None:
    alice, bob = users.create("alice"), users.create("bob")
    bobs, alices = Stream(app, bob), Stream(app, alice)
    try:
        with app.app_context():  # as another process would with Redis down: no wake-up here
            db.session.execute(
                sa.update(AuthSession)
                .where(AuthSession.user_id == bob.id)
                .values(revoked_at=sa.func.now())
            )
            db.session.commit()
        assert bobs.ended(TIMEOUT / 3 + 2), "the revoked session's stream goes on"
        assert not alices.ended(0.5)  # another session's stream is untouched
    finally:
        alices.close()
        bobs.close()
