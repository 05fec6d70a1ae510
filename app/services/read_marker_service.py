"""Read markers: how far each member has read, and the exact unread count that follows."""

from __future__ import annotations

from app.crud import conversation_crud, message_crud
from app.database.connection import transactional
from app.services import conversation_service, event_service
from app.services.event_service import Event


@transactional
def mark_read(conversation_id: int, user_id: int, seq: int) -> dict[str, int]:
    """Move the caller's read marker forward to ``seq`` (clamped to the newest message)."""
    conversation, member = conversation_service.require_membership(conversation_id, user_id)
    target = min(seq, conversation.last_seq)
    moved = target > member.last_read_seq
    if moved:
        conversation_crud.advance_read_marker(conversation_id, user_id, target)
    # Read back: a concurrent request may have moved the marker further still.
    marker = conversation_crud.read_marker(conversation_id, user_id)
    if moved:
        _emit_read(conversation_id, user_id, marker)
    return _read_state(conversation_id, user_id, marker)


@transactional
def mark_unread(conversation_id: int, user_id: int, seq: int) -> dict[str, int]:
    """Set the caller's read marker to ``seq - 1``: unread from that message on."""
    conversation, _ = conversation_service.require_membership(conversation_id, user_id)
    marker = min(seq - 1, conversation.last_seq)
    conversation_crud.set_read_marker(conversation_id, user_id, marker)
    _emit_read(conversation_id, user_id, marker)
    return _read_state(conversation_id, user_id, marker)


def _emit_read(conversation_id: int, user_id: int, marker: int) -> None:
    recipients = conversation_crud.member_ids(conversation_id)
    data = {"user_id": user_id, "last_read_seq": marker}
    event_service.emit([Event("read.updated", conversation_id, recipients, data=data)])


def _read_state(conversation_id: int, user_id: int, marker: int) -> dict[str, int]:
    return {
        "last_read_seq": marker,
        "unread_count": message_crud.count_unread(conversation_id, user_id, marker),
    }
