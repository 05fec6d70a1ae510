"""Schemas of the conversations domain: conversations, members, read markers and messages."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.core.utils import DIRECT, GROUP, KINDS, MAX_ID, MAX_IDS_PER_CALL, ROLES
from app.schemas.dumpers import compile_dumper
from app.schemas.fields import BodySchema, Name, Text, UTCTimestamp
from app.schemas.user_schema import UserSchema


def IdField(**kwargs: Any) -> fields.Integer:  # noqa: N802 - reads as a field class
    """Return a positive 64-bit id; strings and floats are not ids."""
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


def SeqField(minimum: int = 1, **kwargs: Any) -> fields.Integer:  # noqa: N802
    """Return a message ``seq`` in a JSON body, at least ``minimum``."""
    return fields.Integer(strict=True, validate=validate.Range(min=minimum, max=MAX_ID), **kwargs)


class MessageSchema(Schema):
    """A message; a deleted one keeps its ``seq`` with ``body: null``."""

    id = fields.Integer()
    conversation_id = fields.Integer()
    seq = fields.Integer()
    sender_id = fields.Integer()
    body = fields.String(allow_none=True)
    client_id = fields.String(allow_none=True)
    created_at = UTCTimestamp()
    edited_at = UTCTimestamp(allow_none=True)
    deleted = fields.Boolean()


class ConversationSchema(Schema):
    """A conversation as the caller sees it."""

    id = fields.Integer()
    kind = fields.String(metadata={"enum": list(KINDS)})
    title = fields.String(allow_none=True)
    created_at = UTCTimestamp()
    created_by = fields.Integer()
    last_seq = fields.Integer()
    last_message = fields.Nested(MessageSchema, allow_none=True)
    last_activity_at = UTCTimestamp()
    my_role = fields.String(metadata={"enum": list(ROLES)})
    my_last_read_seq = fields.Integer()
    unread_count = fields.Integer()
    member_count = fields.Integer()


class ConversationPageSchema(Schema):
    """A page of conversations."""

    items = fields.List(fields.Nested(ConversationSchema))
    next_cursor = fields.String(allow_none=True)


class ConversationCreateSchema(BodySchema):
    """``POST /conversations``: a direct conversation with one user, or a titled group."""

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    title = Name(validate=validate.Length(min=1, max=200))
    member_ids = fields.List(
        IdField(),
        required=True,
        validate=validate.Length(max=MAX_IDS_PER_CALL),
        metadata={
            "description": "direct: exactly one user id (your own for notes to self); "
            "group: up to 500 others in this call (a group grows to 5,000 members by adding more)."
        },
    )

    @validates_schema
    def check_kind(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Direct conversations name one other user and have no title; groups need a title."""
        if data.get("kind") == DIRECT:
            if len(data.get("member_ids", [])) != 1:
                raise ValidationError("A direct conversation names exactly one user.", "member_ids")
            if "title" in data:
                raise ValidationError("A direct conversation has no title.", "title")
        elif data.get("kind") == GROUP and "title" not in data:
            raise ValidationError("Missing data for required field.", "title")


class ConversationUpdateSchema(BodySchema):
    """``PATCH /conversations/{id}``."""

    title = Name(required=True, validate=validate.Length(min=1, max=200))


class MemberSchema(Schema):
    """A member of a conversation."""

    user = fields.Nested(UserSchema)
    role = fields.String(metadata={"enum": list(ROLES)})
    joined_at = UTCTimestamp()
    last_read_seq = fields.Integer()


class MemberListSchema(Schema):
    """All members of a conversation."""

    items = fields.List(fields.Nested(MemberSchema))


class PresenceSchema(Schema):
    """A member's presence (also the data of a ``presence`` event)."""

    user_id = fields.Integer()
    status = fields.String(metadata={"enum": ["online", "offline"]})
    last_seen_at = UTCTimestamp(allow_none=True)


class PresenceListSchema(Schema):
    """The presence of every member of a conversation."""

    items = fields.List(fields.Nested(PresenceSchema))


class MembersAddSchema(BodySchema):
    """``POST /conversations/{id}/members``."""

    user_ids = fields.List(
        IdField(), required=True, validate=validate.Length(min=1, max=MAX_IDS_PER_CALL)
    )


class ReadMarkerSchema(BodySchema):
    """``POST /conversations/{id}/read``: everything up to ``seq`` is read (0 is a no-op)."""

    seq = SeqField(minimum=0, required=True)


class UnreadMarkerSchema(BodySchema):
    """``POST /conversations/{id}/unread``: unread from message ``seq`` on."""

    seq = SeqField(required=True)


class ReadStateSchema(Schema):
    """The caller's read marker and unread count after a change."""

    last_read_seq = fields.Integer()
    unread_count = fields.Integer()


class MessageCreateSchema(BodySchema):
    """``POST …/messages``."""

    body = Text(required=True, strip=True, validate=validate.Length(min=1, max=10_000))
    client_id = Text(
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "Idempotency key: a retry with the same value stores nothing new."
        },
    )


class MessageUpdateSchema(BodySchema):
    """``PATCH …/messages/{seq}``."""

    body = Text(required=True, strip=True, validate=validate.Length(min=1, max=10_000))


class MessageQuerySchema(Schema):
    """``GET …/messages?before=&after=&limit=``."""

    before = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "The `limit` messages just below this seq."},
    )
    after = fields.Integer(
        validate=validate.Range(min=0, max=MAX_ID),
        metadata={"description": "The `limit` messages just above this seq."},
    )
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )


class MessagePageSchema(Schema):
    """A page of messages in ascending ``seq``."""

    items = fields.List(fields.Nested(MessageSchema))
    has_more = fields.Boolean()


# The hot lists are serialised by dumpers compiled from the schemas above (same output, in the
# same key order; tests/api/test_fast_dump.py compares them).
dump_message = compile_dumper(MessageSchema())
dump_conversation = compile_dumper(ConversationSchema())
