"""Schemas of the event endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.schemas.fields import Pattern, Text, UTCTimestamp

EVENT_TYPES = [
    "conversation.created",
    "conversation.updated",
    "member.added",
    "member.removed",
    "message.created",
    "message.updated",
    "message.deleted",
    "read.updated",
]


class EventQuerySchema(Schema):
    """``GET /events?since=&timeout=``."""

    since = Text(
        validate=[
            validate.Length(min=1, max=32),
            Pattern(r"^[0-9]+$", error="Invalid cursor."),
        ],
        metadata={"description": "The `next` of the previous call; omit it to get a start."},
    )
    timeout = fields.Float(
        load_default=0,
        validate=validate.Range(min=0, max=30),
        metadata={"description": "Seconds to wait for an event when there is none (0–30)."},
    )


class StreamQuerySchema(Schema):
    """``GET /events/stream?since=`` (``Last-Event-ID`` takes precedence)."""

    since = Text(
        validate=[
            validate.Length(min=1, max=32),
            Pattern(r"^[0-9]+$", error="Invalid cursor."),
        ]
    )


class EventSchema(Schema):
    """One change that concerns the caller."""

    cursor = fields.String(metadata={"description": "Position of this event; pass as `since`."})
    type = fields.String(metadata={"enum": EVENT_TYPES})
    conversation_id = fields.Integer(allow_none=True)
    data = fields.Dict(metadata={"description": "The resource after the change."})
    created_at = UTCTimestamp()


class EventPageSchema(Schema):
    """Events after the cursor, and the cursor to pass next."""

    events = fields.List(fields.Nested(EventSchema))
    next = fields.String()
