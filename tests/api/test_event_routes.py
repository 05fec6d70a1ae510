"""Long-polling and Server-Sent Events over the per-user event log."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.database import db
from app.database.base import utcnow
from app.models import UserEvent
from tests.conftest import clean_database, make_app
from tests.factories import ApiUser, Chat, UserFactory
from tests.helpers import assert_problem

EVENTS = "/api/v1/events"


def start(client: FlaskClient, user: ApiUser) -> str:
    body = client.get(EVENTS, headers=user.headers).get_json()
    assert body["events"] == []
    cursor: str = body["next"]
    return cursor


def drain(client: FlaskClient, user: ApiUser, cursor: str) -> tuple[list[dict[str, Any]], str]:
    events: list[dict[str, Any]] = []
    while True:
        body = client.get(f"{EVENTS}?since={cursor}", headers=user.headers).get_json()
        if not body["events"]:
            return events, body["next"]
        events += body["events"]
        cursor = body["next"]


def test_start_cursor_then_every_kind_of_event_in_order(
    client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
    cursor = start(client, bob)
    group = chat.group(alice, bob, title="plans")
    cid = group["id"]
    chat.send(alice, cid, "hi")
    client.patch(
        f"/api/v1/conversations/{cid}/messages/1", json={"body": "hi!"}, headers=alice.headers
    )
    chat.send(bob, cid, "yo")
    client.delete(f"/api/v1/conversations/{cid}/messages/1", headers=alice.headers)
    client.post(f"/api/v1/conversations/{cid}/read", json={"seq": 2}, headers=alice.headers)
    client.patch(f"/api/v1/conversations/{cid}", json={"title": "plans 2"}, headers=alice.headers)
    client.post(
        f"/api/v1/conversations/{cid}/members", json={"user_ids": [carol.id]}, headers=alice.headers
    )
    client.delete(f"/api/v1/conversations/{cid}/members/{carol.id}", headers=alice.headers)
    events, end = drain(client, bob, cursor)
    assert [e["type"] for e in events] == [
        "conversation.created",
        "message.created",
        "message.updated",
        "message.created",
        "message.deleted",
        "read.updated",
        "conversation.updated",
        "member.added",
        "conversation.updated",
        "member.removed",
        "conversation.updated",
    ]
    cursors = [int(e["cursor"]) for e in events]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    assert end == events[-1]["cursor"]
    assert {e["conversation_id"] for e in events} == {cid}
    assert set(events[0]) == {"cursor", "type", "conversation_id", "data", "created_at"}
    created = events[0]["data"]
    assert created["id"] == cid and created["my_role"] == "member" and created["member_count"] == 2
    assert events[1]["data"]["body"] == "hi" and events[2]["data"]["body"] == "hi!"
    assert events[4]["data"] == {**events[4]["data"], "seq": 1, "deleted": True, "body": None}
    assert events[5]["data"] == {"user_id": alice.id, "last_read_seq": 2}
    assert events[6]["data"]["title"] == "plans 2"
    assert events[7]["data"]["user"]["id"] == carol.id and events[7]["data"]["role"] == "member"
    assert events[9]["data"]["user"]["id"] == carol.id
    assert events[10]["data"]["member_count"] == 2 and events[10]["data"]["unread_count"] == 0
    # Nothing new: an empty list at once, and the same cursor.
    assert client.get(f"{EVENTS}?since={end}", headers=bob.headers).get_json() == {
        "events": [],
        "next": end,
    }


def test_owner_sees_per_recipient_role(client: FlaskClient, users: UserFactory, chat: Chat) -> None:
    alice, bob = users.create("alice"), users.create("bob")
    cursor = start(client, alice)
    chat.group(alice, bob)
    events, _ = drain(client, alice, cursor)
    assert events[0]["data"]["my_role"] == "owner"


def test_outsiders_get_nothing(client: FlaskClient, users: UserFactory, chat: Chat) -> None:
    alice, bob, eve = users.create("alice"), users.create("bob"), users.create("eve")
    cursor = start(client, eve)
    direct = chat.direct(alice, bob)
    chat.send(alice, direct["id"], "private")
    assert drain(client, eve, cursor)[0] == []


def test_leaving_stops_delivery_at_once(
    client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob = users.create("alice"), users.create("bob")
    group = chat.group(alice, bob)
    cursor = start(client, bob)
    chat.send(alice, group["id"], "before bob leaves")  # written to bob's log, not yet read
    client.delete(f"/api/v1/conversations/{group['id']}/members/{bob.id}", headers=bob.headers)
    chat.send(alice, group["id"], "after bob left")
    events, end = drain(client, bob, cursor)
    assert [e["type"] for e in events] == ["member.removed"]
    assert events[0]["data"]["user"]["id"] == bob.id
    assert int(end) >= int(events[0]["cursor"])


@pytest.mark.parametrize("since", ["abc", "-1", "1.5", "9" * 40, "12a"])
def test_malformed_cursors(client: FlaskClient, users: UserFactory, since: str) -> None:
    alice = users.create("alice")
    assert_problem(client.get(f"{EVENTS}?since={since}", headers=alice.headers), 422)


def test_cursor_ahead_and_bad_timeouts(client: FlaskClient, users: UserFactory) -> None:
    alice = users.create("alice")
    assert_problem(client.get(f"{EVENTS}?since=5", headers=alice.headers), 422)
    for timeout in ("-1", "31", "soon"):
        assert_problem(
            client.get(f"{EVENTS}?since=0&timeout={timeout}", headers=alice.headers), 422
        )
    assert_problem(client.get(EVENTS), 401)


def test_expired_cursor_is_410_after_prune(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob = users.create("alice"), users.create("bob")
    cursor = start(client, bob)
    direct = chat.direct(alice, bob)
    chat.send(alice, direct["id"], "old news")
    with app.app_context():
        db.session.execute(sa.update(UserEvent).values(created_at=utcnow() - timedelta(days=8)))
        db.session.commit()
    chat.send(alice, direct["id"], "fresh")
    result = app.test_cli_runner().invoke(args=["events", "prune"])
    assert result.exit_code == 0 and "pruned 4 event(s) older than 7 day(s)" in result.output
    body = assert_problem(
        client.get(f"{EVENTS}?since={cursor}", headers=bob.headers), 410, "cursor_expired"
    )
    assert "resync" in body["detail"] or "lists" in body["detail"]
    # A fresh start works, and the events kept are still readable from the pruned position.
    current = start(client, bob)
    events, _ = drain(client, bob, str(int(current) - 1))
    assert [e["data"]["body"] for e in events] == ["fresh"]


def test_long_poll_waits_and_wakes(
    client: FlaskClient, app: Flask, users: UserFactory, chat: Chat
) -> None:
    alice, bob = users.create("alice"), users.create("bob")
    direct = chat.direct(alice, bob)
    cursor = start(client, bob)
    started = time.monotonic()
    empty = client.get(f"{EVENTS}?since={cursor}&timeout=0.6", headers=bob.headers).get_json()
    assert empty == {"events": [], "next": cursor} and time.monotonic() - started >= 0.55

    def send_later() -> None:
        time.sleep(0.3)
        app.test_client().post(
            f"/api/v1/conversations/{direct['id']}/messages",
            json={"body": "ping"},
            headers=alice.headers,
        )

    sender = threading.Thread(target=send_later)
    started = time.monotonic()
    sender.start()
    body = client.get(f"{EVENTS}?since={cursor}&timeout=10", headers=bob.headers).get_json()
    waited = time.monotonic() - started
    sender.join()
    assert [e["data"]["body"] for e in body["events"]] == ["ping"]
    assert waited < 5  # woken by the commit, not by the timeout


def _read_stream(response: Any) -> str:
    return b"".join(response.response).decode()


def test_sse_stream_delivers_and_ends_with_the_token(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    app.config["EVENTS_KEEPALIVE_SECONDS"] = 0.2
    alice, bob = users.create("alice"), users.create("bob")
    direct = chat.direct(alice, bob)
    cursor = start(client, bob)
    chat.send(alice, direct["id"], "one")
    app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(seconds=2)
    users.login(bob)  # a token that expires in 2 s: the stream must end then
    response = client.get(
        f"{EVENTS}/stream", headers={**bob.headers, "Last-Event-ID": cursor}, buffered=False
    )
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    started = time.monotonic()
    text = _read_stream(response)
    assert time.monotonic() - started < 6
    blocks = [b for b in text.split("\n\n") if b.startswith("id:")]
    assert len(blocks) == 1
    lines = dict(line.split(": ", 1) for line in blocks[0].splitlines())
    assert lines["event"] == "message.created" and int(lines["id"]) > int(cursor)
    assert '"body":"one"' in lines["data"]
    assert ": keep-alive" in text


def test_sse_stream_ends_when_the_session_is_revoked(
    app: Flask, client: FlaskClient, users: UserFactory
) -> None:
    app.config["EVENTS_KEEPALIVE_SECONDS"] = 0.2
    bob = users.create("bob")
    response = client.get(f"{EVENTS}/stream", headers=bob.headers, buffered=False)

    def logout_later() -> None:
        time.sleep(0.5)
        app.test_client().post("/api/v1/auth/logout", headers=bob.headers)

    thread = threading.Thread(target=logout_later)
    started = time.monotonic()
    thread.start()
    text = _read_stream(response)
    thread.join()
    assert time.monotonic() - started < 5
    assert text.startswith("retry:")


def test_sse_rejects_bad_cursors(client: FlaskClient, users: UserFactory) -> None:
    bob = users.create("bob")
    assert_problem(
        client.get(f"{EVENTS}/stream", headers={**bob.headers, "Last-Event-ID": "x"}), 422
    )
    assert_problem(client.get(f"{EVENTS}/stream?since=99", headers=bob.headers), 422)


def test_waiting_long_polls_hold_no_database_connection(
    database_url: str, users: UserFactory
) -> None:
    from tests.conftest import make_app

    # One pooled connection and no overflow: if waiting held it, nothing else could run.
    tight = make_app(
        database_url,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 2},
    )
    client = tight.test_client()
    bob = users.create("bob")
    cursor = client.get(EVENTS, headers=bob.headers).get_json()["next"]
    results: list[int] = []

    def wait() -> None:
        response = tight.test_client().get(
            f"{EVENTS}?since={cursor}&timeout=3", headers=bob.headers
        )
        results.append(response.status_code)

    waiters = [threading.Thread(target=wait) for _ in range(3)]
    for thread in waiters:
        thread.start()
    time.sleep(0.8)
    started = time.monotonic()
    assert client.get("/api/v1/users/me", headers=bob.headers).status_code == 200
    assert time.monotonic() - started < 1.5
    for thread in waiters:
        thread.join()
    assert results == [200, 200, 200]
    with tight.app_context():
        from app.database import db as tight_db

        tight_db.engine.dispose()


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b2", "abc", "-1", "9" * 40])
def test_a_bad_last_event_id_is_a_422_naming_the_header(
    client: FlaskClient, users: UserFactory, value: str
) -> None:
    """Superscript digits pass str.isdigit() but not int(): never a 500."""
    alice = users.create("alice")
    headers = {**alice.headers, "Last-Event-ID": value.encode().decode("latin-1")}
    response = client.get("/api/v1/events/stream", headers=headers)
    body = assert_problem(response, 422, "validation_error")
    assert list(body["errors"]) == ["headers"] and "Last-Event-ID" in body["errors"]["headers"]


def test_a_backlog_of_hidden_events_is_read_through_at_once(
    database_url: str, _schema: None
) -> None:
    """Two batches of events of a conversation bob left, then his removal: one call returns it.

    The database is polled only every 30 s here, as when wake-ups come through Redis: a reader
    that waited after a batch of hidden events would return empty-handed at its timeout.
    """
    app = make_app(database_url, EVENTS_POLL_SECONDS=30)
    try:
        client = app.test_client()
        users, chat = UserFactory(app, client), Chat(client)
        alice, bob = users.create("alice"), users.create("bob")
        cursor = start(client, bob)
        group = chat.group(alice, bob, title="noisy")
        for i in range(430):  # more than two batches (200 events each) of hidden events
            chat.send(alice, group["id"], f"message {i}")
        left = client.delete(
            f"/api/v1/conversations/{group['id']}/members/{bob.id}", headers=bob.headers
        )
        assert left.status_code == 204
        body = client.get(f"{EVENTS}?since={cursor}&timeout=2", headers=bob.headers).get_json()
        assert [e["type"] for e in body["events"]] == ["member.removed"]
        stream = client.get(f"{EVENTS}/stream?since={cursor}", headers=bob.headers, buffered=False)
        lines = (line for chunk in stream.response for line in chunk.decode().splitlines())
        assert next(line for line in lines if line.startswith("event:")) == "event: member.removed"
        stream.close()
    finally:
        clean_database(app)


def test_logout_ends_a_waiting_long_poll(
    client: FlaskClient, users: UserFactory, chat: Chat, app: Flask
) -> None:
    alice, bob = users.create("alice"), users.create("bob")
    cursor = start(client, bob)
    results: list[Any] = []

    def wait() -> None:
        waiting_client = app.test_client()
        results.append(
            waiting_client.get(f"{EVENTS}?since={cursor}&timeout=20", headers=bob.headers)
        )

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)  # let the long-poll start waiting
    assert client.post("/api/v1/auth/logout", headers=bob.headers).status_code == 204
    chat.direct(alice, bob)  # an event for bob: it must not reach the logged-out poll
    waiter.join(10)
    assert not waiter.is_alive(), "the long-poll still waits after logout"
    assert_problem(results[0], 401, "token_revoked")


def test_one_user_holds_at_most_the_configured_event_connections(
    database_url: str, _schema: None
) -> None:
    # A namespace of its own: streams other tests left open hold slots of their users' ids.
    prefix = f"parley-test-{uuid.uuid4().hex}"
    app = make_app(
        database_url, EVENTS_MAX_CONNECTIONS_PER_USER=3, REDIS_URL="", REDIS_PREFIX=prefix
    )
    try:
        client = app.test_client()
        users = UserFactory(app, client)
        alice, bob = users.create("alice"), users.create("bob")
        streams = [
            client.get(f"{EVENTS}/stream", headers=alice.headers, buffered=False) for _ in range(3)
        ]
        assert all(s.status_code == 200 for s in streams)
        refused = client.get(f"{EVENTS}/stream", headers=alice.headers)
        assert_problem(refused, 429, "too_many_connections")
        assert int(refused.headers["Retry-After"]) > 0
        cursor = start(client, alice)  # no wait (timeout 0): no connection slot needed
        waiting = client.get(f"{EVENTS}?since={cursor}&timeout=1", headers=alice.headers)
        assert_problem(waiting, 429, "too_many_connections")  # a waiting long-poll counts
        other = client.get(f"{EVENTS}/stream", headers=bob.headers, buffered=False)
        assert other.status_code == 200  # another user is not limited by alice's streams
        other.close()
        streams.pop().close()  # a closed stream gives its slot back
        again = client.get(f"{EVENTS}/stream", headers=alice.headers, buffered=False)
        assert again.status_code == 200
        for response in reversed([*streams, again]):  # last opened, first closed
            response.close()
    finally:
        clean_database(app)
