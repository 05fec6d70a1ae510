"""SQL for conversations and their members."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.database import db
from app.database.base import UTCDateTime, row_dicts
from app.models.conversation_models import Conversation, Member, Message


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


_conversations = sa.inspect(Conversation).local_table
_members = sa.inspect(Member).local_table
_messages = sa.inspect(Message).local_table


def membership_exists(conversation_id: Any, user_id: Any) -> sa.Exists:
    """``EXISTS`` a membership row of ``user_id`` in ``conversation_id`` (columns or parameters).

    The one membership condition of this domain's statements: the membership check, a send's
    locking statement and its message insert, and the history page.
    """
    return sa.exists().where(
        _members.c.conversation_id == conversation_id, _members.c.user_id == user_id
    )


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


def find_group_by_title(user_id: int, title: str) -> tuple[Conversation, Member] | None:
    """Return the user's oldest group with this title, and the membership."""
    row = db.session.execute(
        sa.select(Conversation, Member)
        .join(Member, Member.conversation_id == Conversation.id)
        .where(Member.user_id == user_id, Conversation.kind == "group", Conversation.title == title)
        .order_by(Conversation.id)
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def member_ids(conversation_id: int) -> list[int]:
    """Return the user ids of a conversation's members."""
    stmt = sa.select(Member.user_id).where(Member.conversation_id == conversation_id)
    return list(db.session.scalars(stmt))


def unread_counts_of_members(conversation_id: int) -> dict[int, int]:
    """Return every member's unread count in one conversation (one grouped query)."""
    rows = db.session.execute(
        sa.select(Member.user_id, sa.func.count(Message.id))
        .join(
            Message,
            sa.and_(
                Message.conversation_id == Member.conversation_id,
                Message.seq > Member.last_read_seq,
                Message.sender_id != Member.user_id,
                Message.deleted_at.is_(None),
            ),
        )
        .where(Member.conversation_id == conversation_id)
        .group_by(Member.user_id)
    ).all()
    return {user_id: count for user_id, count in rows}


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


def list_user_conversations(
    user_id: int,
    as_of: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Return a page of the user's conversations by activity as of ``as_of``, newest first.

    The order is the activity each conversation had at ``as_of`` (the first page's time), so
    messages arriving while a client pages move nothing between pages. Memberships quiet since
    then are read in that order straight from the (user, activity) index, ``limit`` of them;
    the few active since then get their activity as of ``as_of`` recomputed. The cost is one
    statement that grows with the page size, never with how many conversations the user has.

    Each row (plain columns, no ORM objects: a page is read on every app start and refresh):
    the conversation's columns, ``my_role`` and ``my_last_read_seq``, ``activity`` as of
    ``as_of``, the newest message's columns prefixed ``last_`` (None without messages),
    ``unread_count`` and ``member_count``.
    """
    params: dict[str, object] = {"user_id": user_id, "as_of": as_of, "limit": limit}
    if after is not None:
        params.update(after_activity=after[0], after_id=after[1])
    result = db.session.execute(_page_statement(after is not None), params)
    return row_dicts(result)


@functools.cache
def _page_statement(keyset: bool) -> sa.Select[Any]:
    """Build the page statement once, with bound parameters.

    Building a statement this size takes longer than running it; built once, it is reused by
    every request (SQLAlchemy statements are immutable and safe to share between threads).
    Plain Core on the tables: the rows come back as tuples, without the ORM's per-execution
    and per-row work.
    """
    member, conversation = _members.c, _conversations.c
    message = _messages.c
    user_id = sa.bindparam("user_id", type_=sa.BigInteger)
    as_of = sa.bindparam("as_of", type_=UTCDateTime)
    limit = sa.bindparam("limit", type_=sa.Integer)
    key = sa.tuple_(
        sa.bindparam("after_activity", type_=UTCDateTime),
        sa.bindparam("after_id", type_=sa.BigInteger),
    )
    quiet = sa.select(
        member.conversation_id.label("cid"), member.last_activity_at.label("activity")
    ).where(member.user_id == user_id, member.last_activity_at <= as_of)
    if keyset:
        quiet = quiet.where(sa.tuple_(member.last_activity_at, member.conversation_id) < key)
    quiet_page = (
        quiet.order_by(member.last_activity_at.desc(), member.conversation_id.desc())
        .limit(limit)
        .subquery("quiet")
    )
    then = (
        sa.select(sa.func.coalesce(sa.func.max(message.created_at), conversation.created_at))
        .where(message.conversation_id == conversation.id, message.created_at <= as_of)
        .scalar_subquery()
    )
    moved = (
        sa.select(conversation.id.label("cid"), then.label("activity"))
        .join(_members, member.conversation_id == conversation.id)
        .where(
            member.user_id == user_id,
            member.last_activity_at > as_of,
            conversation.created_at <= as_of,
        )
        .subquery("moved")
    )
    moved_rows = sa.select(moved.c.cid, moved.c.activity)
    if keyset:
        moved_rows = moved_rows.where(sa.tuple_(moved.c.activity, moved.c.cid) < key)
    candidates = sa.union_all(
        sa.select(quiet_page.c.cid, quiet_page.c.activity), moved_rows
    ).subquery("candidates")

    last = _messages.alias("last_message")
    counted = _messages.alias("unread_message")
    others = _members.alias("other_member")
    unread = (
        sa.select(sa.func.count())
        .select_from(counted)
        .where(
            counted.c.conversation_id == conversation.id,
            counted.c.seq > member.last_read_seq,
            counted.c.sender_id != user_id,
            counted.c.deleted_at.is_(None),
        )
        .scalar_subquery()
    )
    member_count = (
        sa.select(sa.func.count())
        .select_from(others)
        .where(others.c.conversation_id == conversation.id)
        .scalar_subquery()
    )
    return (
        sa.select(
            conversation.id,
            conversation.kind,
            conversation.title,
            conversation.created_at,
            conversation.created_by,
            conversation.last_seq,
            conversation.last_activity_at,
            member.role.label("my_role"),
            member.last_read_seq.label("my_last_read_seq"),
            candidates.c.activity,
            last.c.id.label("last_id"),
            last.c.sender_id.label("last_sender_id"),
            last.c.body.label("last_body"),
            last.c.client_id.label("last_client_id"),
            last.c.created_at.label("last_created_at"),
            last.c.edited_at.label("last_edited_at"),
            last.c.deleted_at.label("last_deleted_at"),
            unread.label("unread_count"),
            member_count.label("member_count"),
        )
        .select_from(_conversations)
        .join(candidates, candidates.c.cid == conversation.id)
        .join(
            _members, sa.and_(member.conversation_id == conversation.id, member.user_id == user_id)
        )
        .outerjoin(
            last,
            sa.and_(last.c.conversation_id == conversation.id, last.c.seq == conversation.last_seq),
        )
        .order_by(candidates.c.activity.desc(), conversation.id.desc())
        .limit(limit)
    )


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


def last_messages(conversation_ids: Sequence[int]) -> dict[int, Message]:
    """Return the newest message of each conversation (tombstones included)."""
    if not conversation_ids:
        return {}
    rows = db.session.scalars(
        sa.select(Message)
        .join(
            Conversation,
            sa.and_(
                Conversation.id == Message.conversation_id, Message.seq == Conversation.last_seq
            ),
        )
        .where(Conversation.id.in_(conversation_ids))
    ).all()
    return {m.conversation_id: m for m in rows}


def unread_counts(user_id: int, conversation_ids: Sequence[int]) -> dict[int, int]:
    """Exact unread counts: others' live messages above the user's read marker."""
    if not conversation_ids:
        return {}
    rows = db.session.execute(
        sa.select(Message.conversation_id, sa.func.count())
        .join(
            Member,
            sa.and_(Member.conversation_id == Message.conversation_id, Member.user_id == user_id),
        )
        .where(
            Message.conversation_id.in_(conversation_ids),
            Message.seq > Member.last_read_seq,
            Message.sender_id != user_id,
            Message.deleted_at.is_(None),
        )
        .group_by(Message.conversation_id)
    ).all()
    return {cid: count for cid, count in rows}


def member_counts(conversation_ids: Sequence[int]) -> dict[int, int]:
    """Count the members of each conversation."""
    if not conversation_ids:
        return {}
    rows = db.session.execute(
        sa.select(Member.conversation_id, sa.func.count())
        .where(Member.conversation_id.in_(conversation_ids))
        .group_by(Member.conversation_id)
    ).all()
    return {cid: count for cid, count in rows}


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
