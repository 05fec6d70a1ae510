"""SQL for conversations and their members: creation, locks, membership, read markers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.core.utils import GROUP
from app.crud.conversation_sql import conversations as _conversations
from app.crud.conversation_sql import members as _members
from app.crud.conversation_sql import membership_exists
from app.database import db
from app.database.base import UTCDateTime
from app.models.conversation_models import Conversation, Member


def add_conversation(conversation: Conversation) -> Conversation:
    """Add a conversation and flush so it has an id."""
    db.session.add(conversation)
    db.session.flush()
    return conversation


def add_members(members: Iterable[Member]) -> None:
    """Add membership rows."""
    db.session.add_all(list(members))
    db.session.flush()


def get_direct_conversation(direct_key: str) -> Conversation | None:
    """Return the direct conversation of a pair, if it exists."""
    return db.session.scalar(sa.select(Conversation).where(Conversation.direct_key == direct_key))


def lock_membership(conversation_id: int, user_id: int) -> tuple[Conversation, Member] | None:
    """Return a conversation with its row locked until the transaction ends, and the membership.

    Every write to a conversation's messages or members takes this lock first, which orders
    them: sends get consecutive ``seq`` values, membership changes do not interleave.
    (SQLite has no row locks; its writers are already serialised by ``BEGIN IMMEDIATE``.)
    One statement; None when the conversation does not exist or the user is not a member.
    """
    row = db.session.execute(
        sa.select(Conversation, Member)
        .join(Member, Member.conversation_id == Conversation.id)
        .where(Conversation.id == conversation_id, Member.user_id == user_id)
        .with_for_update(of=Conversation)
        .execution_options(populate_existing=True)
    ).first()
    return (row[0], row[1]) if row else None


#: A send's first write: lock the conversation row, take its next ``seq`` and record the
#: activity, if the sender is a member. One statement, so the lock is taken as late as it can be.
_NEXT_SEQ = (
    sa.update(_conversations)
    .where(
        _conversations.c.id == sa.bindparam("conversation_id", type_=sa.BigInteger),
        membership_exists(_conversations.c.id, sa.bindparam("user_id", type_=sa.BigInteger)),
    )
    .values(
        last_seq=_conversations.c.last_seq + 1,
        last_activity_at=sa.bindparam("now", type_=UTCDateTime),
    )
    .returning(_conversations.c.last_seq)
)


def take_next_seq(conversation_id: int, user_id: int, now: datetime) -> int | None:
    """Lock a conversation for a member's send and return its next ``seq``.

    Bumps ``last_seq`` and sets ``last_activity_at``; the row stays locked until the transaction
    ends. None when the conversation does not exist or the user is not a member.
    """
    return db.session.execute(
        _NEXT_SEQ, {"conversation_id": conversation_id, "user_id": user_id, "now": now}
    ).scalar()


def get_member(conversation_id: int, user_id: int) -> Member | None:
    """Return a user's membership of a conversation."""
    return db.session.get(Member, (conversation_id, user_id))


_IS_MEMBER = sa.select(
    membership_exists(
        sa.bindparam("conversation_id", type_=sa.BigInteger),
        sa.bindparam("user_id", type_=sa.BigInteger),
    )
)


def is_member(conversation_id: int, user_id: int) -> bool:
    """Whether the user belongs to the conversation."""
    params = {"conversation_id": conversation_id, "user_id": user_id}
    return bool(db.session.execute(_IS_MEMBER, params).scalar())


def get_membership_with_conversation(
    conversation_id: int, user_id: int
) -> tuple[Conversation, Member] | None:
    """Return the conversation and the user's membership of it in one query."""
    row = db.session.execute(
        sa.select(Conversation, Member)
        .join(Member, Member.conversation_id == Conversation.id)
        .where(Conversation.id == conversation_id, Member.user_id == user_id)
    ).first()
    return (row[0], row[1]) if row else None


def find_group_by_title(user_id: int, title: str) -> int | None:
    """Return the id of the user's oldest group with this title."""
    return db.session.scalar(
        sa.select(Conversation.id)
        .join(Member, Member.conversation_id == Conversation.id)
        .where(Member.user_id == user_id, Conversation.kind == GROUP, Conversation.title == title)
        .order_by(Conversation.id)
        .limit(1)
    )


def member_ids(conversation_id: int) -> list[int]:
    """Return the user ids of a conversation's members."""
    stmt = sa.select(Member.user_id).where(Member.conversation_id == conversation_id)
    return list(db.session.scalars(stmt))


def co_member_ids(user_id: int, max_members: int) -> list[int]:
    """Return the users who share a conversation of at most ``max_members`` with this one."""
    mine, other = sa.orm.aliased(Member), sa.orm.aliased(Member)
    too_big = (  # a member past the limit exists: reads at most max_members + 1 index entries
        sa.select(other.user_id)
        .where(other.conversation_id == mine.conversation_id)
        .limit(1)
        .offset(max_members)
        .exists()
    )
    theirs = sa.select(mine.conversation_id).where(mine.user_id == user_id, ~too_big)
    stmt = (
        sa.select(Member.user_id)
        .where(Member.conversation_id.in_(theirs), Member.user_id != user_id)
        .distinct()
    )
    return list(db.session.scalars(stmt))


def list_members(conversation_id: int) -> Sequence[Member]:
    """Members of a conversation, longest-standing first."""
    return db.session.scalars(
        sa.select(Member)
        .where(Member.conversation_id == conversation_id)
        .order_by(Member.joined_at, Member.user_id)
    ).all()


def delete_member(member: Member) -> None:
    """Remove a membership row."""
    db.session.delete(member)
    db.session.flush()


_TOUCH = (
    sa.update(_members)
    .where(_members.c.conversation_id == sa.bindparam("touched_id", type_=sa.BigInteger))
    .values(last_activity_at=sa.bindparam("moment", type_=UTCDateTime))
)
_TOUCH_AND_READ = _TOUCH.values(
    last_read_seq=sa.case(
        (
            _members.c.user_id == sa.bindparam("reader_id", type_=sa.BigInteger),
            sa.bindparam("read_seq", type_=sa.BigInteger),
        ),
        else_=_members.c.last_read_seq,
    )
)


def touch_members(
    conversation_id: int, moment: datetime, reader: tuple[int, int] | None = None
) -> None:
    """Copy a conversation's new activity time onto all its memberships.

    ``reader``, ``(user_id, seq)``: also move that member's read marker to ``seq``, in the same
    statement (a sender has read their own message). Both statements are built once.
    """
    params: dict[str, Any] = {"touched_id": conversation_id, "moment": moment}
    if reader is None:
        db.session.execute(_TOUCH, params)
    else:
        params["reader_id"], params["read_seq"] = reader
        db.session.execute(_TOUCH_AND_READ, params)


def flush() -> None:
    """Write pending changes of loaded rows now, so that the statements after them see them."""
    db.session.flush()


def savepoint() -> sa.orm.SessionTransaction:
    """Open a SAVEPOINT: a failed insert inside it leaves the outer transaction usable."""
    return db.session.begin_nested()


def advance_read_marker(conversation_id: int, user_id: int, seq: int) -> None:
    """Move a read marker forward only, atomically (a concurrent larger move wins)."""
    db.session.execute(
        sa.update(Member)
        .where(
            Member.conversation_id == conversation_id,
            Member.user_id == user_id,
            Member.last_read_seq < seq,
        )
        .values(last_read_seq=seq)
        .execution_options(synchronize_session=False)
    )


def set_read_marker(conversation_id: int, user_id: int, seq: int) -> None:
    """Set a read marker to ``seq``, backwards too."""
    db.session.execute(
        sa.update(Member)
        .where(Member.conversation_id == conversation_id, Member.user_id == user_id)
        .values(last_read_seq=seq)
        .execution_options(synchronize_session=False)
    )


def read_marker(conversation_id: int, user_id: int) -> int:
    """Return a read marker as stored now."""
    stmt = sa.select(Member.last_read_seq).where(
        Member.conversation_id == conversation_id, Member.user_id == user_id
    )
    return db.session.scalar(stmt) or 0
