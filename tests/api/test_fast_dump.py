"""The hot lists are serialised by dumpers compiled from their schemas: the same output."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask.testing import FlaskClient
from marshmallow import Schema, fields

from app.schemas.conversation_schema import (
    ConversationSchema,
    MessageSchema,
    dump_conversation,
    dump_message,
)
from app.schemas.dumpers import compile_dumper
from app.schemas.fields import UTCTimestamp
from tests.factories import Chat, UserFactory

CREATED = datetime(2026, 11, 26, 10, 15, 0, 123456, tzinfo=UTC)
MESSAGES = [
    {
        "id": 1,
        "conversation_id": 7,
        "seq": 1,
        "sender_id": 3,
        "body": "héllo 🦜",
        "client_id": None,
        "created_at": CREATED,
        "edited_at": None,
        "deleted": False,
    },
    {
        "id": 2,
        "conversation_id": 7,
        "seq": 2,
        "sender_id": 4,
        "body": "edited",
        "client_id": "c-1",
        "created_at": CREATED.astimezone(timezone(timedelta(hours=5, minutes=30))),
        "edited_at": CREATED + timedelta(seconds=1),
        "deleted": False,
    },
    {
        "id": 3,
        "conversation_id": 7,
        "seq": 3,
        "sender_id": 4,
        "body": None,
        "client_id": None,
        "created_at": CREATED,
        "edited_at": None,
        "deleted": True,
    },
]


@pytest.mark.parametrize("message", MESSAGES, ids=["plain", "edited", "deleted"])
def test_dump_message_equals_the_schema(message: dict[str, object]) -> None:
    expected = MessageSchema().dump(message)
    assert json.dumps(dump_message(message)) == json.dumps(expected)  # same keys, same order


@pytest.mark.parametrize("last", [None, *MESSAGES], ids=["empty", "plain", "edited", "deleted"])
def test_dump_conversation_equals_the_schema(last: dict[str, object] | None) -> None:
    conversation = {
        "id": 7,
        "kind": "group",
        "title": "Trip",
        "created_at": CREATED,
        "created_by": 3,
        "last_seq": 0 if last is None else 3,
        "last_message": last,
        "last_activity_at": CREATED,
        "my_role": "owner",
        "my_last_read_seq": 1,
        "unread_count": 2,
        "member_count": 5,
    }
    expected = ConversationSchema().dump(conversation)
    assert json.dumps(dump_conversation(conversation)) == json.dumps(expected)


def test_list_items_equal_the_single_reads(
    client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob = users.create("alice"), users.create("bob")
    group = chat.group(alice, bob, title="Trip")
    chat.send(alice, group["id"], "first")
    chat.send(bob, group["id"], "second ✓")
    base = f"/api/v1/conversations/{group['id']}"
    listed = client.get("/api/v1/conversations", headers=alice.headers).get_json()["items"]
    assert listed == [client.get(base, headers=alice.headers).get_json()]
    page = client.get(f"{base}/messages", headers=alice.headers).get_json()
    singles = [
        client.get(f"{base}/messages/{seq}", headers=alice.headers).get_json() for seq in (1, 2)
    ]
    assert page == {"items": singles, "has_more": False}


def test_a_field_without_a_fast_path_is_refused_at_start_up() -> None:
    class WithAList(Schema):
        id = fields.Integer()
        tags = fields.List(fields.String())

    with pytest.raises(TypeError, match="WithAList.tags"):
        compile_dumper(WithAList())


def test_a_dumper_follows_the_schema() -> None:
    class Renamed(Schema):
        seq = fields.Integer(data_key="position")
        when = UTCTimestamp(allow_none=True)

    dump = compile_dumper(Renamed())
    data = {"seq": 3, "when": CREATED}
    assert dump(data) == Renamed().dump(data) == {"position": 3, "when": "2026-11-26T10:15:00.123Z"}
    assert dump({"seq": 4, "when": None}) == {"position": 4, "when": None}
