"""SQL for the Conversation resource: one member's view, every member's view, the list page.

All three are one statement each, built once, from one column list (:func:`_resource_select`):
the conversation's columns, the viewer's membership (``my_role``, ``my_last_read_seq``), the
newest message, the exact unread count and the member count. A new field of the resource is one
more column there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.crud.conversation_sql import (
    MESSAGE_FIELDS,
    conversations,
    is_unread,
    members,
    message_columns,
    messages,
)
from app.database import db
from app.database.base import UTCDateTime

#: The Conversation resource, field by field, in its JSON order.
CONVERSATION_FIELDS = (
    "id",
    "kind",
    "title",
    "created_at",
    "created_by",
    "last_seq",
    "last_message",
    "last_activity_at",
    "my_role",
    "my_last_read_seq",
    "unread_count",
    "member_count",
)


def _resource_select(viewer: Any, *extra: Any, source: Any = conversations) -> sa.Select[Any]:
    """SELECT the Conversation resource as the ``viewer`` membership row sees it.

    ``viewer`` is the members table, joined to the conversation; the newest message comes from
    an outer join on ``last_seq``, its columns prefixed ``last_message_``. ``source`` is what the
    conversations are read from (the table, or the table joined to a page's candidates).
    """
    conversation = conversations.c
    last = messages.alias("last_message")
    counted = messages.alias("unread_message")
    others = members.alias("other_member")
    unread = (
        sa.select(sa.func.count())
        .select_from(counted)
        .where(
            counted.c.conversation_id == conversation.id,
            is_unread(counted, viewer.c.last_read_seq, viewer.c.user_id),
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
            viewer.c.role.label("my_role"),
            viewer.c.last_read_seq.label("my_last_read_seq"),
            unread.label("unread_count"),
            member_count.label("member_count"),
            *message_columns(last, "last_message_"),
            *extra,
        )
        .select_from(source)
        .join(viewer, viewer.c.conversation_id == conversation.id)
        .outerjoin(
            last,
            sa.and_(last.c.conversation_id == conversation.id, last.c.seq == conversation.last_seq),
        )
    )


@functools.cache
def _builder(keys: tuple[str, ...]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """Return a function building the Conversation resource from a row with these column keys.

    Built once per statement shape: each field is read from its position in the row tuple, with
    no row mapping made on the way (a page of conversations is read on every app start).
    """
    at = {key: position for position, key in enumerate(keys)}
    last_id = at["last_message_id"]
    last = tuple((name, at["last_message_" + name]) for name in MESSAGE_FIELDS)
    plan = tuple((name, at.get(name, -1)) for name in CONVERSATION_FIELDS)

    def build(row: Sequence[Any]) -> dict[str, Any]:
        message = None if row[last_id] is None else {name: row[i] for name, i in last}
        return {name: row[i] if i >= 0 else message for name, i in plan}

    return build


def _resources(result: sa.Result[Any]) -> tuple[list[dict[str, Any]], Sequence[Sequence[Any]]]:
    """Build the resources of a result's rows; return them and the rows."""
    build = _builder(tuple(result.keys()))
    rows = result.all()
    return [build(row) for row in rows], rows


@functools.cache
def _one_view() -> sa.Select[Any]:
    return _resource_select(members).where(
        conversations.c.id == sa.bindparam("conversation_id", type_=sa.BigInteger),
        members.c.user_id == sa.bindparam("user_id", type_=sa.BigInteger),
    )


def get_view(conversation_id: int, user_id: int) -> dict[str, Any] | None:
    """Return the conversation as ``user_id`` sees it; None unless they are a member."""
    params = {"conversation_id": conversation_id, "user_id": user_id}
    resources, _ = _resources(db.session.execute(_one_view(), params))
    return resources[0] if resources else None


@functools.cache
def _every_view() -> sa.Select[Any]:
    viewer_id = members.c.user_id.label("viewer_id")
    return (
        _resource_select(members, viewer_id)
        .where(conversations.c.id == sa.bindparam("conversation_id", type_=sa.BigInteger))
        .order_by(members.c.user_id)
    )


def get_member_views(conversation_id: int) -> dict[int, dict[str, Any]]:
    """Return every member's view of a conversation, by user id (for per-member events)."""
    result = db.session.execute(_every_view(), {"conversation_id": conversation_id})
    resources, rows = _resources(result)
    return {row[-1]: resource for resource, row in zip(resources, rows, strict=True)}


def list_user_conversations(
    user_id: int,
    as_of: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[tuple[dict[str, Any], datetime]]:
    """Return a page of the user's conversations by activity as of ``as_of``, newest first.

    The order is the activity each conversation had at ``as_of`` (the first page's time), so
    messages arriving while a client pages move nothing between pages. Memberships quiet since
    then are read in that order straight from the (user, activity) index, ``limit`` of them;
    the few active since then get their activity as of ``as_of`` recomputed. The cost is one
    statement that grows with the page size, never with how many conversations the user has.

    Each item is ``(resource, activity)``: the Conversation resource, and its activity as of
    ``as_of`` (the position for the next page's cursor; the statement's last column).
    """
    params: dict[str, object] = {"user_id": user_id, "as_of": as_of, "limit": limit}
    if after is not None:
        params.update(after_activity=after[0], after_id=after[1])
    resources, rows = _resources(db.session.execute(_page_statement(after is not None), params))
    return [(resource, row[-1]) for resource, row in zip(resources, rows, strict=True)]


@functools.cache
def _page_statement(keyset: bool) -> sa.Select[Any]:
    """Build the page statement once per shape, with bound parameters.

    Building a statement this size takes longer than running it; built once, it is reused by
    every request (SQLAlchemy statements are immutable and safe to share between threads).
    Plain Core on the tables: the rows come back as tuples, without the ORM's per-execution
    and per-row work.
    """
    member, conversation, message = members.c, conversations.c, messages.c
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
        .join(members, member.conversation_id == conversation.id)
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
    source = conversations.join(candidates, candidates.c.cid == conversation.id)
    return (
        _resource_select(members, candidates.c.activity, source=source)
        .where(member.user_id == user_id)
        .order_by(candidates.c.activity.desc(), conversation.id.desc())
        .limit(limit)
    )
