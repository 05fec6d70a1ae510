"""The SQL the conversations domain's statements share: one definition of each condition.

Who is a member, what is unread, and which columns make the Message resource are written here
once; ``conversation_crud``, ``conversation_view_crud``, ``message_crud`` and ``event_crud``
build their statements from these pieces and reach each other's tables only through them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.models.conversation_models import Conversation, Member, Message

conversations = sa.inspect(Conversation).local_table
members = sa.inspect(Member).local_table
messages = sa.inspect(Message).local_table


def membership_exists(conversation_id: Any, user_id: Any) -> sa.Exists:
    """``EXISTS`` a membership row of ``user_id`` in ``conversation_id`` (columns or parameters).

    The one membership condition: the membership check, a send's locking statement and its
    message insert, the history page, and which events a user is still delivered.
    """
    return sa.exists().where(
        members.c.conversation_id == conversation_id, members.c.user_id == user_id
    )


def is_unread(message: Any, last_read_seq: Any, reader_id: Any) -> sa.ColumnElement[bool]:
    """Tell whether a message is unread for a reader: the one definition ``unread_count`` counts.

    A message of the conversation above the reader's read marker, sent by someone else, and
    not deleted. ``message`` is the messages table or an alias of it.
    """
    return sa.and_(
        message.c.seq > last_read_seq,
        message.c.sender_id != reader_id,
        message.c.deleted_at.is_(None),
    )


#: The Message resource, field by field, in its JSON order: what the history page selects, what
#: a conversation's ``last_message`` is built from, and what events carry. ``deleted`` is
#: computed from ``deleted_at``; the others are columns of the same name.
MESSAGE_FIELDS = (
    "id",
    "conversation_id",
    "seq",
    "sender_id",
    "body",
    "client_id",
    "created_at",
    "edited_at",
    "deleted",
)


def message_field(message: Any, name: str) -> sa.ColumnElement[Any]:
    """Return the SQL of one Message field on ``message`` (the table or an alias of it)."""
    if name == "deleted":
        return message.c.deleted_at.is_not(None)
    return message.c[name]


def message_columns(message: Any, prefix: str = "") -> list[sa.ColumnElement[Any]]:
    """Return the Message resource's columns on ``message``, labelled ``prefix + field``."""
    return [message_field(message, name).label(prefix + name) for name in MESSAGE_FIELDS]


def message_resource(message: Message) -> dict[str, Any]:
    """Return the Message resource of a loaded (or just written) message."""
    return {name: getattr(message, name) for name in MESSAGE_FIELDS}
