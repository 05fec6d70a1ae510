"""SQL for messages."""

from __future__ import annotations

import sqlalchemy as sa

from app.database import db
from app.models.conversation_models import Message


def add_message(message: Message) -> Message:
    """Add a message and flush so it has an id."""
    db.session.add(message)
    db.session.flush()
    return message


def get_message(conversation_id: int, seq: int) -> Message | None:
    """Return the message with this ``seq`` in a conversation."""
    return db.session.scalar(
        sa.select(Message).where(Message.conversation_id == conversation_id, Message.seq == seq)
    )


def get_by_client_id(conversation_id: int, sender_id: int, client_id: str) -> Message | None:
    """Return the message a sender stored under an idempotency key."""
    return db.session.scalar(
        sa.select(Message).where(
            Message.conversation_id == conversation_id,
            Message.sender_id == sender_id,
            Message.client_id == client_id,
        )
    )


def list_messages(
    conversation_id: int, before: int | None, after: int | None, limit: int
) -> tuple[list[Message], bool]:
    """Up to ``limit`` messages in ascending ``seq``, and whether more lie beyond them.

    Only ``after``: the ones just above it (more = newer ones remain). Otherwise the ones just
    below ``before`` (or the newest), and more = older ones remain.
    """
    stmt = sa.select(Message).where(Message.conversation_id == conversation_id)
    if after is not None:
        stmt = stmt.where(Message.seq > after)
    if before is not None:
        stmt = stmt.where(Message.seq < before)
    if after is not None and before is None:
        rows = list(db.session.scalars(stmt.order_by(Message.seq).limit(limit + 1)))
        return rows[:limit], len(rows) > limit
    rows = list(db.session.scalars(stmt.order_by(Message.seq.desc()).limit(limit + 1)))
    return list(reversed(rows[:limit])), len(rows) > limit


def count_unread(conversation_id: int, user_id: int, last_read_seq: int) -> int:
    """Exact unread count of one conversation for one user."""
    stmt = sa.select(sa.func.count()).where(
        Message.conversation_id == conversation_id,
        Message.seq > last_read_seq,
        Message.sender_id != user_id,
        Message.deleted_at.is_(None),
    )
    return db.session.scalar(stmt) or 0
