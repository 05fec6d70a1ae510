"""SQL for the event log."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.database import db
from app.database.base import UTCDateTime
from app.models.conversation_models import Member
from app.models.event_models import EventCounter, UserEvent


def allocate(counts: dict[int, int]) -> dict[int, int]:
    """Reserve ``counts[user]`` positions in each user's log; return each user's first one.

    The counters are locked in user-id order (no deadlock between writers) and stay locked
    until the transaction ends, so a user's positions become visible in commit order: a
    reader that has seen position N can never later find a smaller one appear.
    """
    user_ids = sorted(counts)
    insert = (postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert)(
        EventCounter
    )
    db.session.execute(
        insert.values(
            [{"user_id": uid, "last_seq": 0, "pruned_seq": 0} for uid in user_ids]
        ).on_conflict_do_nothing(index_elements=["user_id"])
    )
    current: dict[int, int] = dict(
        db.session.execute(  # type: ignore[arg-type]
            sa.select(EventCounter.user_id, EventCounter.last_seq)
            .where(EventCounter.user_id.in_(user_ids))
            .order_by(EventCounter.user_id)
            .with_for_update()
        ).all()
    )
    db.session.execute(
        sa.update(EventCounter).execution_options(synchronize_session=False),
        [{"user_id": uid, "last_seq": current[uid] + counts[uid]} for uid in user_ids],
    )
    return {uid: current[uid] + 1 for uid in user_ids}


@functools.cache
def _fan_out_statements() -> tuple[sa.TextualSelect, sa.Insert]:
    """Build the two statements of :func:`fan_out` once, with bound parameters."""
    members = sa.inspect(Member).local_table
    counters = sa.inspect(EventCounter).local_table
    events = sa.inspect(UserEvent).local_table
    conversation_id = sa.bindparam("conversation_id", type_=sa.BigInteger)
    # Members in user-id order: the counters are locked in that order, as in allocate(). Plain
    # SQL, the same on PostgreSQL and SQLite: SQLAlchemy cannot cache the compiled form of its
    # ON CONFLICT DO UPDATE construct, and compiled it again on every send (about 0.2 ms).
    take = (
        sa.text(
            f"INSERT INTO {counters.name} (user_id, last_seq, pruned_seq) "
            f"SELECT m.user_id, 1, 0 FROM {members.name} AS m "
            "WHERE m.conversation_id = :conversation_id ORDER BY m.user_id "
            f"ON CONFLICT (user_id) DO UPDATE SET last_seq = {counters.name}.last_seq + 1 "
            f"RETURNING {counters.name}.user_id"
        )
        .bindparams(conversation_id)
        .columns(sa.column("user_id", sa.BigInteger))
    )
    write = sa.insert(events).from_select(
        ["user_id", "seq", "type", "conversation_id", "subject_id", "data", "created_at"],
        sa.select(
            counters.c.user_id,
            counters.c.last_seq,
            sa.bindparam("type", type_=sa.String(32)),
            conversation_id,
            sa.bindparam("subject_id", type_=sa.BigInteger),
            sa.bindparam("data", type_=sa.JSON),
            sa.bindparam("created_at", type_=UTCDateTime),
        )
        .join(members, members.c.user_id == counters.c.user_id)
        .where(members.c.conversation_id == conversation_id),
    )
    return take, write


def fan_out(
    conversation_id: int, kind: str, subject_id: int | None, data: Any, now: datetime
) -> list[int]:
    """Append the same event to the log of every member of a conversation; return the members.

    Two statements whatever the number of members: the first takes the next position of each
    member's counter (creating missing counters) and keeps those rows locked until the
    transaction ends; the second writes each member's event at the position just taken. The
    caller must hold the conversation's row lock, so membership cannot change in between.
    """
    take, write = _fan_out_statements()
    recipients = list(db.session.scalars(take, {"conversation_id": conversation_id}))
    params = {
        "conversation_id": conversation_id,
        "type": kind,
        "subject_id": subject_id,
        "data": data,
        "created_at": now,
    }
    db.session.execute(write, params)
    return recipients


def add_events(rows: list[dict[str, Any]]) -> None:
    """Insert event rows (one statement)."""
    if rows:
        db.session.execute(sa.insert(UserEvent), rows)


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
    rows = db.session.execute(
        sa.select(UserEvent, Member.user_id.label("member"))
        .outerjoin(
            Member,
            sa.and_(Member.conversation_id == UserEvent.conversation_id, Member.user_id == user_id),
        )
        .where(UserEvent.user_id == user_id, UserEvent.seq > since)
        .order_by(UserEvent.seq)
        .limit(limit)
    ).all()
    scanned = rows[-1][0].seq if rows else since
    deliverable = [
        event
        for event, member in rows
        if event.conversation_id is None
        or member is not None
        or (event.type == "member.removed" and event.subject_id == user_id)
    ]
    return deliverable, scanned


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


def end_read() -> None:
    """Give the connection back to the pool before a reader waits."""
    db.session.remove()
