"""The event log is complete and ordered: state at a cursor plus the events after it equals a fresh
fetch, and a transaction that commits late is never skipped."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.services import event_service, message_service
from tests.factories import ApiUser, Chat, UserFactory

API = "/api/v1"


def fetch_state(client: FlaskClient, user: ApiUser) -> dict[int, dict[str, Any]]:
    """Everything a client shows: conversation items, their members and their messages."""
    state: dict[int, dict[str, Any]] = {}
    items = client.get(f"{API}/conversations?limit=100", headers=user.headers).get_json()["items"]
    for item in items:
        cid = item["id"]
        members = client.get(f"{API}/conversations/{cid}/members", headers=user.headers).get_json()[
            "items"
        ]
        messages: dict[int, dict[str, Any]] = {}
        after = 0
        while True:
            page = client.get(
                f"{API}/conversations/{cid}/messages?after={after}&limit=100", headers=user.headers
            ).get_json()
            for m in page["items"]:
                messages[m["seq"]] = m
                after = m["seq"]
            if not page["has_more"]:
                break
        state[cid] = {
            "item": item,
            "members": {m["user"]["id"]: m for m in members},
            "messages": messages,
        }
    return state


def apply_events(state: dict[int, dict[str, Any]], events: list[dict[str, Any]], me: int) -> None:
    """A client's reducer: the events alone bring its state up to date."""
    for event in events:
        cid, data, kind = event["conversation_id"], event["data"], event["type"]
        if kind in ("conversation.created", "conversation.updated"):
            # A conversation first seen through an event: its member list was never fetched.
            entry = state.setdefault(cid, {"item": {}, "members": None, "messages": {}})
            entry["item"] = dict(data)
            continue
        entry = state.get(cid)
        if entry is None:
            continue
        members = entry["members"]
        if kind == "member.added":
            if members is not None:
                members[data["user"]["id"]] = data
        elif kind == "member.removed":
            if data["user"]["id"] == me:
                del state[cid]
                continue
            if members is not None:
                members.pop(data["user"]["id"], None)
        elif kind.startswith("message."):
            entry["messages"][data["seq"]] = data
            item = entry["item"]
            if kind == "message.created":
                item["last_seq"] = data["seq"]
                item["last_activity_at"] = data["created_at"]
                sender = (members or {}).get(data["sender_id"])
                if sender:
                    sender["last_read_seq"] = data["seq"]
                if data["sender_id"] == me:
                    item["my_last_read_seq"] = data["seq"]
            if data["seq"] == item["last_seq"]:
                item["last_message"] = data
        elif kind == "read.updated":
            if data["user_id"] in (members or {}):
                members[data["user_id"]]["last_read_seq"] = data["last_read_seq"]  # type: ignore[index]
            if data["user_id"] == me:
                entry["item"]["my_last_read_seq"] = data["last_read_seq"]
        # Derived fields a client computes from what it holds.
        item = entry["item"]
        item["unread_count"] = sum(
            1
            for m in entry["messages"].values()
            if m["seq"] > item["my_last_read_seq"] and m["sender_id"] != me and not m["deleted"]
        )


def drain(client: FlaskClient, user: ApiUser, cursor: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        body = client.get(f"{API}/events?since={cursor}", headers=user.headers).get_json()
        if not body["events"]:
            return events
        events += body["events"]
        cursor = body["next"]


def random_operations(
    client: FlaskClient, chat: Chat, people: list[ApiUser], rng: random.Random, count: int
) -> None:
    groups = [chat.group(people[0], people[1], title="g0")["id"]]
    for _ in range(count):
        actor = rng.choice(people)
        mine = client.get(f"{API}/conversations?limit=100", headers=actor.headers).get_json()[
            "items"
        ]
        roll = rng.random()
        if roll < 0.08:
            other = rng.choice(people)
            chat.direct(actor, other)
        elif roll < 0.12:
            groups.append(chat.group(actor, *rng.sample(people, 2), title=f"g{len(groups)}")["id"])
        elif not mine:
            continue
        else:
            conv = rng.choice(mine)
            path = f"{API}/conversations/{conv['id']}"
            if roll < 0.55:
                client.post(
                    f"{path}/messages", json={"body": f"m{rng.random():.4f}"}, headers=actor.headers
                )
            elif roll < 0.62 and conv["last_seq"]:
                client.patch(
                    f"{path}/messages/{rng.randint(1, conv['last_seq'])}",
                    json={"body": "edit"},
                    headers=actor.headers,
                )
            elif roll < 0.68 and conv["last_seq"]:
                client.delete(
                    f"{path}/messages/{rng.randint(1, conv['last_seq'])}", headers=actor.headers
                )
            elif roll < 0.78:
                client.post(
                    f"{path}/read",
                    json={"seq": rng.randint(0, conv["last_seq"] + 1)},
                    headers=actor.headers,
                )
            elif roll < 0.83 and conv["last_seq"]:
                client.post(
                    f"{path}/unread",
                    json={"seq": rng.randint(1, conv["last_seq"])},
                    headers=actor.headers,
                )
            elif roll < 0.9 and conv["kind"] == "group":
                client.post(
                    f"{path}/members",
                    json={"user_ids": [rng.choice(people).id]},
                    headers=actor.headers,
                )
            elif roll < 0.95 and conv["kind"] == "group":
                client.delete(f"{path}/members/{rng.choice(people).id}", headers=actor.headers)
            elif conv["kind"] == "group":
                client.patch(path, json={"title": f"t{rng.randint(0, 99)}"}, headers=actor.headers)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_state_at_cursor_plus_events_equals_fresh_state(
    client: FlaskClient, users: UserFactory, chat: Chat, seed: int
) -> None:
    rng = random.Random(seed)
    people = [users.create(f"z{seed}u{i}") for i in range(3)]
    random_operations(client, chat, people, rng, 25)
    snapshots = {}
    for person in people:
        cursor = client.get(f"{API}/events", headers=person.headers).get_json()["next"]
        snapshots[person.id] = (cursor, fetch_state(client, person))
    random_operations(client, chat, people, rng, 60)
    for person in people:
        cursor, state = snapshots[person.id]
        apply_events(state, drain(client, person, cursor), person.id)
        fresh = fetch_state(client, person)
        assert set(state) == set(fresh)
        for cid, entry in fresh.items():
            assert state[cid]["item"] == entry["item"], cid
            assert state[cid]["messages"] == entry["messages"], cid
            if state[cid]["members"] is not None:
                assert state[cid]["members"] == entry["members"], cid


def test_a_transaction_that_commits_late_is_not_skipped(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("SQLite serialises writers: a second transaction cannot commit first")
    alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
    first_conv = chat.direct(alice, bob)["id"]
    second_conv = chat.direct(carol, bob)["id"]
    cursor = client.get(f"{API}/events", headers=bob.headers).get_json()["next"]
    real_emit = event_service.emit_to_all_members
    in_transaction, release = threading.Event(), threading.Event()

    def paused_emit(*args: Any) -> None:
        in_transaction.set()
        assert release.wait(10)
        real_emit(*args)

    def slow_send() -> None:
        with app.app_context():
            message_service.send_message(first_conv, alice.id, "started first", None)

    event_service.emit_to_all_members = paused_emit  # type: ignore[assignment]
    slow = threading.Thread(target=slow_send)
    slow.start()
    try:
        assert in_transaction.wait(10)
        event_service.emit_to_all_members = real_emit  # type: ignore[assignment]
        chat.send(carol, second_conv, "committed first")  # starts later, commits first
        first_poll = client.get(f"{API}/events?since={cursor}", headers=bob.headers).get_json()
        assert [e["data"]["body"] for e in first_poll["events"]] == ["committed first"]
    finally:
        event_service.emit_to_all_members = real_emit  # type: ignore[assignment]
        release.set()
        slow.join(10)
    second_poll = client.get(
        f"{API}/events?since={first_poll['next']}", headers=bob.headers
    ).get_json()
    assert [e["data"]["body"] for e in second_poll["events"]] == ["started first"]
