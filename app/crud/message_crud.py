"""SQL for messages."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from app.crud.conversation_sql import (
    is_unread,
    membership_exists,
    message_columns,
)
from app.crud.conversation_sql import messages as _messages
from app.database import db
from app.database.base import UTCDateTime, row_dicts
from app.models.conversation_models import Message


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


_INSERT_AS_MEMBER = (
    sa.insert(_messages)
    .from_select(
        ["conversation_id", "seq", "sender_id", "body", "client_id", "created_at"],
        sa.select(
            sa.bindparam("new_conversation_id", type_=sa.BigInteger),
            sa.bindparam("new_seq", type_=sa.BigInteger),
            sa.bindparam("new_sender_id", type_=sa.BigInteger),
            sa.bindparam("new_body", type_=sa.Text),
            sa.bindparam("new_client_id", type_=sa.String(64)),
            sa.bindparam("new_created_at", type_=UTCDateTime),
        ).where(
            membership_exists(
                sa.bindparam("new_conversation_id", type_=sa.BigInteger),
                sa.bindparam("new_sender_id", type_=sa.BigInteger),
            )
        ),
    )
    .returning(_messages.c.id)
)


def insert_member_message(message: Message) -> Message | None:
    """Store a new (transient) message if its sender is a member of its conversation; set its id.

    One INSERT, without the ORM's flush. The membership is read by the INSERT itself, so under
    the conversation's row lock it is current even when a removal committed while the send
    waited for that lock. None (and nothing stored) when the sender is not a member.
    """
    params = {
        "new_conversation_id": message.conversation_id,
        "new_seq": message.seq,
        "new_sender_id": message.sender_id,
        "new_body": message.body,
        "new_client_id": message.client_id,
        "new_created_at": message.created_at,
    }
    new_id = db.session.execute(_INSERT_AS_MEMBER, params).scalar()
    if new_id is None:
        return None
    message.id = new_id
    return message


@functools.cache
def _page_statement(after: bool, before: bool) -> sa.Select[Any]:
    """Build a history page statement once per shape, with bound parameters.

    Plain Core on the table: rows come back as tuples, without the ORM's per-object work, which
    costs more than the index scan for a page of 50. The reader's membership is a condition of
    the same statement (PostgreSQL evaluates it once, before the scan): a member's page takes
    one round trip.
    """
    m = _messages.c
    stmt = sa.select(*message_columns(_messages)).where(
        m.conversation_id == sa.bindparam("conversation_id", type_=sa.BigInteger),
        membership_exists(
            sa.bindparam("conversation_id", type_=sa.BigInteger),
            sa.bindparam("reader_id", type_=sa.BigInteger),
        ),
    )
    if after:
        stmt = stmt.where(m.seq > sa.bindparam("after", type_=sa.BigInteger))
    if before:
        stmt = stmt.where(m.seq < sa.bindparam("before", type_=sa.BigInteger))
    order = m.seq if after and not before else m.seq.desc()
    return stmt.order_by(order).limit(sa.bindparam("limit", type_=sa.Integer))


def list_messages(
    conversation_id: int, reader_id: int, before: int | None, after: int | None, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` messages in ascending ``seq``, and whether more lie beyond them.

    Only ``after``: the ones just above it (more = newer ones remain). Otherwise the ones just
    below ``before`` (or the newest), and more = older ones remain. Each message is a mapping
    of the Message resource's fields. Nothing when ``reader_id`` is not a member.
    """
    params = {"conversation_id": conversation_id, "reader_id": reader_id, "limit": limit + 1}
    if after is not None:
        params["after"] = after
    if before is not None:
        params["before"] = before
    stmt = _page_statement(after is not None, before is not None)
    rows = row_dicts(db.session.execute(stmt, params))
    page = rows[:limit]
    if not (after is not None and before is None):
        page.reverse()
    return page, len(rows) > limit


def count_unread(conversation_id: int, user_id: int, last_read_seq: int) -> int:
    """Exact unread count of one conversation for one user."""
    stmt = (
        sa.select(sa.func.count())
        .select_from(_messages)
        .where(
            _messages.c.conversation_id == conversation_id,
            is_unread(_messages, last_read_seq, user_id),
        )
    )
    return db.session.scalar(stmt) or 0
