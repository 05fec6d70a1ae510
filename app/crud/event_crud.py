"""SQL for the event log."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.crud.conversation_sql import members, membership_exists
from app.database import db
from app.database.base import UTCDateTime, in_lists
from app.models.event_models import EventCounter, UserEvent

counters = sa.inspect(EventCounter).local_table
events = sa.inspect(UserEvent).local_table


#: Take positions in users' logs: each row of ``{source}`` (``user_id, how many, 0``, in user-id
#: order) adds to that user's counter, creating it at need, and the counter rows stay locked
#: until the transaction ends. So a user's positions become visible in commit order (a reader
#: that has seen position N never later finds a smaller one appear), and writers lock counters in
#: one order (no deadlock). Plain SQL, the same on PostgreSQL and SQLite: SQLAlchemy cannot cache
#: the compiled form of its ON CONFLICT DO UPDATE construct, and would compile it on every send.
_TAKE_POSITIONS = (
    f"INSERT INTO {counters.name} (user_id, last_seq, pruned_seq) {{source}} "
    f"ON CONFLICT (user_id) DO UPDATE SET last_seq = {counters.name}.last_seq + excluded.last_seq "
    f"RETURNING {counters.name}.user_id, {counters.name}.last_seq"
)


@functools.lru_cache(maxsize=64)
def _take_positions_statement(source: str) -> sa.TextualSelect:
    """Build :data:`_TAKE_POSITIONS` over ``source`` once per source."""
    return sa.text(_TAKE_POSITIONS.format(source=source)).columns(
        sa.column("user_id", sa.BigInteger), sa.column("last_seq", sa.BigInteger)
    )


def _take_positions(source: str, params: dict[str, Any]) -> dict[int, int]:
    """Run :data:`_TAKE_POSITIONS` over ``source``; return each user's newest position."""
    rows = db.session.execute(_take_positions_statement(source), params).all()
    return {user_id: last for user_id, last in rows}


def allocate(counts: dict[int, int]) -> dict[int, int]:
    """Reserve ``counts[user]`` positions in each user's log; return each user's first one."""
    user_ids = sorted(counts)
    rows = ", ".join(
        f"(CAST(:u{i} AS BIGINT), CAST(:n{i} AS BIGINT))" for i in range(len(user_ids))
    )
    params: dict[str, Any] = {}
    for i, user_id in enumerate(user_ids):
        params[f"u{i}"], params[f"n{i}"] = user_id, counts[user_id]
    source = f"SELECT column1, column2, 0 FROM (VALUES {rows}) AS v WHERE true ORDER BY column1"
    newest = _take_positions(source, params)
    return {user_id: newest[user_id] - counts[user_id] + 1 for user_id in user_ids}


#: Every member of a conversation, ``:count`` positions each (see :func:`fan_out`).
_MEMBERS_SOURCE = (
    f"SELECT m.user_id, CAST(:count AS BIGINT), 0 FROM {members.name} AS m "
    "WHERE m.conversation_id = :conversation_id ORDER BY m.user_id"
)


@functools.cache
def _write_member_events() -> sa.Insert:
    """Build the INSERT of :func:`fan_out` once: each member's event at a position taken.

    ``back``: how far before the newest position taken (events of a series, oldest first).
    """
    conversation_id = sa.bindparam("conversation_id", type_=sa.BigInteger)
    return sa.insert(events).from_select(
        ["user_id", "seq", "type", "conversation_id", "subject_id", "data", "created_at"],
        sa.select(
            counters.c.user_id,
            counters.c.last_seq - sa.bindparam("back", type_=sa.BigInteger),
            sa.bindparam("type", type_=sa.String(32)),
            conversation_id,
            sa.bindparam("subject_id", type_=sa.BigInteger),
            sa.bindparam("data", type_=sa.JSON),
            sa.bindparam("created_at", type_=UTCDateTime),
        )
        .join(members, members.c.user_id == counters.c.user_id)
        .where(members.c.conversation_id == conversation_id),
    )


def fan_out(
    conversation_id: int, kind: str, series: Sequence[tuple[int | None, Any]], now: datetime
) -> list[int]:
    """Append events to the log of every member of a conversation; return the members.

    ``series``: each event's ``(subject_id, data)``, in order; every member gets them all, at
    consecutive positions. The first statement takes ``len(series)`` positions of each member's
    counter at once (:data:`_TAKE_POSITIONS`: each counter row is updated once, however long
    the series); the second writes each member's events at those positions, an execution per
    event of one cached INSERT ... SELECT. The caller must hold the conversation's row lock,
    so membership cannot change in between.
    """
    count = len(series)
    params = {"conversation_id": conversation_id, "count": count}
    recipients = list(_take_positions(_MEMBERS_SOURCE, params))
    if recipients and series:
        rows = [
            {
                "conversation_id": conversation_id,
                "type": kind,
                "subject_id": subject_id,
                "data": data,
                "created_at": now,
                "back": count - 1 - i,
            }
            for i, (subject_id, data) in enumerate(series)
        ]
        db.session.execute(_write_member_events(), rows)
    return recipients


def add_events(rows: list[dict[str, Any]]) -> None:
    """Insert event rows (one statement)."""
    if rows:
        db.session.execute(sa.insert(UserEvent), rows)


_NEWEST_POSITIONS = sa.select(counters.c.user_id, counters.c.last_seq).where(
    counters.c.user_id.in_(sa.bindparam("user_ids", expanding=True))
)


def newest_positions(user_ids: list[int]) -> dict[int, int]:
    """Return the newest position of each of these users' logs (one statement for them all)."""
    rows = db.session.execute(_NEWEST_POSITIONS, {"user_ids": user_ids}).all()
    return {user_id: last for user_id, last in rows}


def positions(user_id: int) -> tuple[int, int]:
    """Return ``(last_seq, pruned_seq)`` of a user's log (zeros when it is empty)."""
    row = db.session.execute(
        sa.select(EventCounter.last_seq, EventCounter.pruned_seq).where(
            EventCounter.user_id == user_id
        )
    ).first()
    return (row.last_seq, row.pruned_seq) if row else (0, 0)


def events_after(user_id: int, since: int, limit: int) -> tuple[Sequence[UserEvent], int]:
    """Return the user's deliverable events after ``since``, and the last position scanned.

    Events of conversations the user is no longer in are skipped, except the user's own
    removal; the position scanned still moves past them.
    """
    still_member = membership_exists(UserEvent.conversation_id, user_id).label("still_member")
    rows = db.session.execute(
        sa.select(UserEvent, still_member)
        .where(UserEvent.user_id == user_id, UserEvent.seq > since)
        .order_by(UserEvent.seq)
        .limit(limit)
    ).all()
    scanned = rows[-1][0].seq if rows else since
    return [event for event, member in rows if _deliverable(event, member, user_id)], scanned


Range = tuple[int, int]  #: a reader's (user, position read up to)


@functools.lru_cache(maxsize=2)
def _ranges_statement(postgresql: bool) -> sa.Select[Any]:
    """Build the statement of :func:`events_in_ranges` (once per dialect).

    The ranges travel as one parameter, so the statement's text is short and the same for any
    number of them (a statement with thousands of parameters costs the driver more to prepare
    than the database to run): two arrays on PostgreSQL, JSON on SQLite. On PostgreSQL each
    range is its own (LATERAL) index scan: joined plainly, the planner, unable to estimate the
    ranges, hashes the whole log instead (hundreds of milliseconds once it holds a few hundred
    thousand rows); SQLite, which has no LATERAL, probes the index for each range by itself.
    """
    if postgresql:
        given = (
            "SELECT user_id, since FROM unnest(CAST(:users AS BIGINT[]), "
            "CAST(:sinces AS BIGINT[])) AS r(user_id, since)"
        )
    else:
        given = (
            "SELECT CAST(value ->> 0 AS INTEGER) AS user_id, "
            "CAST(value ->> 1 AS INTEGER) AS since FROM json_each(:ranges)"
        )
    wanted = (
        sa.text(given)
        .columns(sa.column("user_id", sa.BigInteger), sa.column("since", sa.BigInteger))
        .subquery("wanted")
    )
    limit = sa.bindparam("limit", type_=sa.BigInteger)
    in_range = sa.and_(
        events.c.user_id == wanted.c.user_id,
        events.c.seq > wanted.c.since,
        events.c.seq <= wanted.c.since + limit,
    )
    if postgresql:
        found = (
            sa.select(events).where(in_range).order_by(events.c.seq).limit(limit).lateral("found")
        )
        source = wanted.join(found, sa.true())
    else:
        found = events
        source = wanted.join(events, in_range)
    still_member = membership_exists(found.c.conversation_id, found.c.user_id)
    return (
        sa.select(*found.c, wanted.c.since, still_member.label("still_member"))
        .select_from(source)
        .order_by(found.c.user_id, wanted.c.since, found.c.seq)
    )


def events_in_ranges(
    ranges: Sequence[Range], limit: int
) -> dict[Range, tuple[list[sa.Row[Any]], int]]:
    """For each ``(user, since)``: :func:`events_after` of the ``limit`` positions after ``since``.

    One statement for up to a thousand readers, for the readers a wake-up reached together. A
    user's positions are dense (taken one after another by the transaction that writes them,
    and pruned only from the oldest), so the ``limit`` positions after ``since`` are the next
    ``limit`` events.
    """
    found: dict[Range, tuple[list[sa.Row[Any]], int]] = {r: ([], r[1]) for r in ranges}
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    statement = _ranges_statement(postgresql)
    for chunk in in_lists(list(dict.fromkeys(ranges))):
        params: dict[str, Any] = {"limit": limit}
        if postgresql:
            params["users"], params["sinces"] = [u for u, _ in chunk], [s for _, s in chunk]
        else:
            params["ranges"] = json.dumps(chunk)
        for row in db.session.execute(statement, params):
            key = (row.user_id, row.since)
            deliverable, _ = found[key]
            if _deliverable(row, row.still_member, row.user_id):
                deliverable.append(row)
            found[key] = (deliverable, row.seq)
    return found


def _deliverable(event: Any, still_member: bool, user_id: int) -> bool:
    """Whether a log row reaches its user: one of a current conversation, or their removal."""
    return (
        event.conversation_id is None
        or still_member
        or (event.type == "member.removed" and event.subject_id == user_id)
    )


def prune(before: datetime) -> int:
    """Delete events created before ``before``; record per user how far the log was pruned."""
    pruned = (
        sa.select(UserEvent.user_id, sa.func.max(UserEvent.seq).label("upto"))
        .where(UserEvent.created_at < before)
        .group_by(UserEvent.user_id)
    )
    for user_id, upto in db.session.execute(pruned).all():
        db.session.execute(
            sa.update(EventCounter)
            .where(EventCounter.user_id == user_id, EventCounter.pruned_seq < upto)
            .values(pruned_seq=upto)
        )
    result = db.session.execute(
        sa.delete(UserEvent)
        .where(UserEvent.created_at < before)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount  # type: ignore[attr-defined]
