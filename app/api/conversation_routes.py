"""``/api/v1/conversations``: conversations, members and read markers."""

from __future__ import annotations

from typing import Any

from flask import jsonify, url_for

from app.api.security import auth_required, current_user_id
from app.core.utils import DIRECT
from app.extensions import Blueprint
from app.schemas.conversation_schema import (
    ConversationCreateSchema,
    ConversationPageSchema,
    ConversationSchema,
    ConversationUpdateSchema,
    MemberListSchema,
    MembersAddSchema,
    PresenceListSchema,
    ReadMarkerSchema,
    ReadStateSchema,
    UnreadMarkerSchema,
    dump_conversation,
)
from app.schemas.fields import PageQuerySchema
from app.services import (
    conversation_service,
    member_service,
    read_marker_service,
    typing_service,
)

blp = Blueprint(
    "conversations",
    __name__,
    url_prefix="/conversations",
    description="Direct and group conversations, members and read markers.",
)


@blp.route("", methods=["POST"])
@auth_required
@blp.arguments(ConversationCreateSchema())
@blp.response(201, ConversationSchema)
@blp.alt_response(
    200, schema=ConversationSchema, description="The pair's existing direct conversation."
)
def create_conversation(data: dict[str, Any]) -> Any:
    """Start a direct conversation (or get the existing one), or create a group."""
    if data["kind"] == DIRECT:
        view, created = conversation_service.start_direct(current_user_id(), data["member_ids"][0])
    else:
        view = conversation_service.create_group(
            current_user_id(), data["title"], data["member_ids"]
        )
        created = True
    location = url_for("conversations.get_conversation", conversation_id=view["id"])
    return view, 201 if created else 200, {"Location": location}


@blp.route("", methods=["GET"])
@auth_required
@blp.arguments(PageQuerySchema(), location="query")
@blp.response(200, ConversationPageSchema)
def list_conversations(query: dict[str, Any]) -> Any:
    """List the caller's conversations, most recent activity first."""
    items, next_cursor = conversation_service.list_conversations(
        current_user_id(), query["limit"], query["cursor"]
    )
    return jsonify({"items": [dump_conversation(c) for c in items], "next_cursor": next_cursor})


@blp.route("/<id:conversation_id>", methods=["GET"])
@auth_required
@blp.response(200, ConversationSchema)
def get_conversation(conversation_id: int) -> Any:
    """Return one of the caller's conversations."""
    return conversation_service.get_conversation(conversation_id, current_user_id())


@blp.route("/<id:conversation_id>", methods=["PATCH"])
@auth_required
@blp.arguments(ConversationUpdateSchema())
@blp.response(200, ConversationSchema)
def update_conversation(data: dict[str, Any], conversation_id: int) -> Any:
    """Rename a group (owners only)."""
    return conversation_service.update_title(conversation_id, current_user_id(), data["title"])


@blp.route("/<id:conversation_id>/typing", methods=["POST"])
@auth_required
@blp.response(204)
def signal_typing(conversation_id: int) -> None:
    """Tell the other members' open event streams that the caller is typing (ephemeral)."""
    typing_service.signal_typing(conversation_id, current_user_id())


@blp.route("/<id:conversation_id>/presence", methods=["GET"])
@auth_required
@blp.response(200, PresenceListSchema)
def get_presence(conversation_id: int) -> Any:
    """Return whether each member is online (`show_presence: false` shows as offline)."""
    return conversation_service.member_presence(conversation_id, current_user_id())


@blp.route("/<id:conversation_id>/members", methods=["GET"])
@auth_required
@blp.response(200, MemberListSchema)
def list_members(conversation_id: int) -> Any:
    """List the members of a conversation."""
    return {"items": member_service.list_members(conversation_id, current_user_id())}


@blp.route("/<id:conversation_id>/members", methods=["POST"])
@auth_required
@blp.arguments(MembersAddSchema())
@blp.response(200, MemberListSchema)
def add_members(data: dict[str, Any], conversation_id: int) -> Any:
    """Add users to a group (owners only); returns every member."""
    items = member_service.add_members(conversation_id, current_user_id(), data["user_ids"])
    return {"items": items}


@blp.route("/<id:conversation_id>/members/<id:user_id>", methods=["DELETE"])
@auth_required
@blp.response(204)
def remove_member(conversation_id: int, user_id: int) -> None:
    """Remove a member (owners) or leave (yourself)."""
    member_service.remove_member(conversation_id, current_user_id(), user_id)


@blp.route("/<id:conversation_id>/read", methods=["POST"])
@auth_required
@blp.arguments(ReadMarkerSchema())
@blp.response(200, ReadStateSchema)
def mark_read(data: dict[str, Any], conversation_id: int) -> Any:
    """Move the caller's read marker forward."""
    return read_marker_service.mark_read(conversation_id, current_user_id(), data["seq"])


@blp.route("/<id:conversation_id>/unread", methods=["POST"])
@auth_required
@blp.arguments(UnreadMarkerSchema())
@blp.response(200, ReadStateSchema)
def mark_unread(data: dict[str, Any], conversation_id: int) -> Any:
    """Mark the conversation unread from message ``seq`` on."""
    return read_marker_service.mark_unread(conversation_id, current_user_id(), data["seq"])
