"""Lists cost a fixed number of SQL statements, whatever the page size or data volume."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.database import db
from tests.factories import Chat, UserFactory


@contextmanager
def counting(app: Flask) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if (
            not statement.lstrip()
            .upper()
            .startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"))
        ):
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_conversation_list_statements_do_not_grow(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice = users.create("alice")
    friends = [users.create(f"f{i}") for i in range(12)]
    for friend in friends:
        conversation = chat.direct(alice, friend)
        chat.send(friend, conversation["id"], "hi")
        chat.send(alice, conversation["id"], "hello")
    counts = {}
    for limit in (1, 5, 12):
        with counting(app) as statements:
            response = client.get(f"/api/v1/conversations?limit={limit}", headers=alice.headers)
        assert response.status_code == 200 and len(response.get_json()["items"]) == limit
        counts[limit] = len(statements)
    assert len(set(counts.values())) == 1, counts
    assert counts[1] <= 2, counts  # the session check, and one statement for the page


def test_own_profile_is_two_statements(app: Flask, client: FlaskClient, users: UserFactory) -> None:
    alice = users.create("alice")
    with counting(app) as statements:
        response = client.get("/api/v1/users/me", headers=alice.headers)
    assert response.status_code == 200
    assert len(statements) == 2, statements  # the session check, and the user


def test_history_statements_do_not_grow(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob = users.create("alice"), users.create("bob")
    conversation = chat.direct(alice, bob)
    for i in range(30):
        chat.send(bob if i % 2 else alice, conversation["id"], f"m{i}")
    counts = {}
    for limit in (1, 10, 30):
        with counting(app) as statements:
            response = client.get(
                f"/api/v1/conversations/{conversation['id']}/messages?limit={limit}",
                headers=alice.headers,
            )
        assert len(response.get_json()["items"]) == limit
        counts[limit] = len(statements)
    assert len(set(counts.values())) == 1 and counts[1] <= 2, counts  # session check, page


def test_members_statements_do_not_grow(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    owner = users.create("owner")
    small = chat.group(owner, users.create("a1"))
    large = chat.group(owner, *[users.create(f"b{i}", login=False) for i in range(10)])
    counts = []
    for group in (small, large):
        with counting(app) as statements:
            client.get(f"/api/v1/conversations/{group['id']}/members", headers=owner.headers)
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


def test_a_send_costs_the_same_statements_whatever_the_group_size(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    owner = users.create("owner")
    others = [users.create(f"m{i}") for i in range(12)]
    cursors = {
        m.id: client.get("/api/v1/events", headers=m.headers).get_json()["next"] for m in others
    }
    counts = {}
    events = {}
    for size in (1, 4, 12):
        group = chat.group(owner, *others[:size], title=f"g{size}")
        chat.send(owner, group["id"], "first")  # every member's event counter exists
        with counting(app) as statements:
            response = client.post(
                f"/api/v1/conversations/{group['id']}/messages",
                json={"body": "counted", "client_id": f"k{size}"},
                headers=owner.headers,
            )
        assert response.status_code == 201
        counts[size] = len(statements)
        events[size] = sum(
            s.lstrip().upper().startswith("INSERT INTO USER_EVENTS") for s in statements
        )
    assert len(set(counts.values())) == 1, counts  # the fan-out does not grow with the members
    assert counts[1] <= 6, counts
    assert set(events.values()) == {1}, events  # one INSERT writes every member's event
    for member in others:  # and each member did get it
        feed = client.get(
            f"/api/v1/events?since={cursors[member.id]}&timeout=0", headers=member.headers
        ).get_json()
        bodies = [e["data"].get("body") for e in feed["events"] if e["type"] == "message.created"]
        assert "counted" in bodies


def test_an_empty_history_page_checks_membership(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob, eve = users.create("alice"), users.create("bob"), users.create("eve")
    conversation = chat.direct(alice, bob)
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    with counting(app) as statements:
        empty = client.get(path, headers=alice.headers)
    assert empty.status_code == 200 and empty.get_json()["items"] == []
    assert len(statements) == 3  # an empty page costs the membership check it saved
    chat.send(bob, conversation["id"], "hi")
    for query in ("", "?before=1", "?after=0"):
        refused = client.get(path + query, headers=eve.headers)
        assert refused.status_code == 404, query
        assert refused.content_type == "application/problem+json"


def test_one_conversation_is_two_statements(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    """The session check, and one statement for the whole Conversation resource."""
    alice, bob = users.create("alice"), users.create("bob")
    group = chat.group(alice, bob, title="Trip")
    chat.send(bob, group["id"], "hello")
    with counting(app) as statements:
        response = client.get(f"/api/v1/conversations/{group['id']}", headers=alice.headers)
    assert response.status_code == 200 and response.get_json()["unread_count"] == 1
    assert len(statements) == 2, statements
