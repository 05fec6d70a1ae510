"""``/api/v1/conversations/{id}/messages``: send, page, read, edit and delete messages."""

from __future__ import annotations

from typing import Any

from flask import jsonify, url_for

from app.api.rate_limits import per_user_sends
from app.api.security import auth_required, current_user_id
from app.extensions import Blueprint
from app.schemas.conversation_schema import (
    MessageCreateSchema,
    MessagePageSchema,
    MessageQuerySchema,
    MessageSchema,
    MessageUpdateSchema,
    dump_message,
)
from app.services import message_service

blp = Blueprint(
    "messages",
    __name__,
    url_prefix="/conversations/<id:conversation_id>/messages",
    description="Messages, numbered 1, 2, 3, … per conversation.",
)


@blp.route("", methods=["POST"])
@auth_required
@per_user_sends()
@blp.arguments(MessageCreateSchema())
@blp.response(201, MessageSchema)
@blp.alt_response(200, schema=MessageSchema, description="A retry: the message first stored.")
@blp.alt_response(409, description="The client_id was used for a different body.")
def send_message(data: dict[str, Any], conversation_id: int) -> Any:
    """Send a message (idempotent per sender and `client_id`)."""
    message, created = message_service.send_message(
        conversation_id, current_user_id(), data["body"], data.get("client_id")
    )
    location = url_for("messages.get_message", conversation_id=conversation_id, seq=message["seq"])
    return message, 201 if created else 200, {"Location": location}


@blp.route("", methods=["GET"])
@auth_required
@blp.arguments(MessageQuerySchema(), location="query")
@blp.response(200, MessagePageSchema)
def list_messages(query: dict[str, Any], conversation_id: int) -> Any:
    """Page through history by `seq` (items always ascending)."""
    page = message_service.list_messages(
        conversation_id, current_user_id(), query.get("before"), query.get("after"), query["limit"]
    )
    return jsonify(
        {"items": [dump_message(m) for m in page["items"]], "has_more": page["has_more"]}
    )


@blp.route("/<id:seq>", methods=["GET"])
@auth_required
@blp.response(200, MessageSchema)
def get_message(conversation_id: int, seq: int) -> Any:
    """Return one message."""
    return message_service.get_message(conversation_id, current_user_id(), seq)


@blp.route("/<id:seq>", methods=["PATCH"])
@auth_required
@blp.arguments(MessageUpdateSchema())
@blp.response(200, MessageSchema)
def edit_message(data: dict[str, Any], conversation_id: int, seq: int) -> Any:
    """Edit a message (its sender only)."""
    return message_service.edit_message(conversation_id, current_user_id(), seq, data["body"])


@blp.route("/<id:seq>", methods=["DELETE"])
@auth_required
@blp.response(204)
def delete_message(conversation_id: int, seq: int) -> None:
    """Delete a message, leaving a tombstone (sender or group owner)."""
    message_service.delete_message(conversation_id, current_user_id(), seq)
