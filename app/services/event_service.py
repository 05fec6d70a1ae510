"""Real-time events: a durable per-user log written in the same transaction as each change.

Design: **fan-out on write**. Each change writes one row per concerned user into that user's
log, at positions taken from a per-user counter whose row stays locked until the transaction
commits. Positions therefore become visible in commit order: a transaction that started first
but commits last simply takes the later positions, so a reader who passes back the last position
it saw can never skip an event that commits late, and needs no safe-horizon guesswork. Reading
is one indexed range scan of the reader's own log, which keeps long-polls cheap however many
conversations exist; the price is one row per member per change (a message to a 500-member
group writes 500 rows), which an index-only insert absorbs well. Fan-out on read would keep
one row per change but needs a global commit-ordered position (a single global lock) or a
horizon below every in-flight transaction, and a membership join on every read.

A user who leaves a conversation stops receiving its events at once: reads skip events of
conversations the user is no longer in (except their own removal).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app

from app.core.connection_slots import Slot, get_slots
from app.core.errors import AppError, FieldError
from app.core.peer import Listener
from app.core.utils import iso_z
from app.core.wakeup import Waker, shutting_down, waker_for
from app.crud import event_crud
from app.database import db
from app.database.base import utcnow
from app.database.connection import after_commit, end_read, transactional
from app.models.event_models import UserEvent
from app.services import presence_service

BATCH = 200
_PENDING_KEY = "parley_event_users"


class CursorExpiredError(AppError):
    """410: the cursor points before the retention window; the client must resync."""

    status_code = 410
    code = "cursor_expired"
    message = "Events after this cursor are no longer kept; fetch the lists again."


def waker() -> Waker:
    """Return the wake-up hub of this process, configured from the app."""
    hub = waker_for(current_app.config)
    if not hub.has_position_reader:
        hub.read_positions_with(_positions_reader(current_app.app_context))
    return hub


def _positions_reader(app_context: Callable[[], Any]) -> Callable[[list[int]], dict[int, int]]:
    """Return the poller's reader: one statement for every waiting user's newest position."""

    def read(user_ids: list[int]) -> dict[int, int]:
        with app_context():
            try:
                return event_crud.newest_positions(user_ids)
            finally:
                end_read()

    return read


def jsonable(value: Any) -> Any:
    """Turn datetimes inside a value into the API's timestamps, for JSON."""
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class Event:
    """One change, to be written to the log of each of its recipients.

    ``data`` is the resource after the change, the same for every recipient; or ``views`` gives
    each recipient their own (a Conversation as each member sees it), and the recipients are its
    keys. ``subject_id``: for member events, the user who joined or left (who is told of their
    own removal after leaving).
    """

    type: str
    conversation_id: int | None
    recipients: Sequence[int]
    data: Mapping[str, Any] | None = None
    views: Mapping[int, Mapping[str, Any]] | None = None
    subject_id: int | None = None

    @classmethod
    def per_recipient(
        cls, type: str, conversation_id: int, views: Mapping[int, Mapping[str, Any]]
    ) -> Event:
        """Make an event whose data is each recipient's own view of the resource."""
        return cls(type, conversation_id, list(views), views=views)

    def data_for(self, user_id: int) -> Mapping[str, Any]:
        """Return the data this recipient's event carries."""
        if self.views is not None:
            return self.views[user_id]
        assert self.data is not None, "an Event has data or views"
        return self.data


def emit(events: Sequence[Event]) -> None:
    """Write events, within the caller's transaction, to the logs of the users concerned.

    All positions of the transaction are taken at once, so counters are locked in one sorted
    pass, in one statement.
    """
    counts: dict[int, int] = {}
    for event in events:
        for user_id in event.recipients:
            counts[user_id] = counts.get(user_id, 0) + 1
    if not counts:
        return
    next_seq = event_crud.allocate(counts)
    now = utcnow()
    rows = []
    for event in events:
        for user_id in event.recipients:
            rows.append(
                {
                    "user_id": user_id,
                    "seq": next_seq[user_id],
                    "type": event.type,
                    "conversation_id": event.conversation_id,
                    "subject_id": event.subject_id,
                    "data": jsonable(event.data_for(user_id)),
                    "created_at": now,
                }
            )
            next_seq[user_id] += 1
    event_crud.add_events(rows)
    wake_after_commit(counts)


def emit_to_all_members(
    type: str, conversation_id: int, series: Sequence[tuple[int | None, Mapping[str, Any]]]
) -> None:
    """Write events, the same for everyone, to the log of each member of a conversation.

    ``series``: each event's ``(subject_id, data)`` (``subject_id`` as :class:`Event`'s), in
    order. The caller holds the conversation's row lock (members cannot change meanwhile). Two
    statements however large the conversation (the second executed once per event), where
    :func:`emit` needs a row per recipient: 499 joiners of a 500-member group are about 500,000
    rows, which the database writes, not Python.
    """
    rows = [(subject_id, jsonable(data)) for subject_id, data in series]
    recipients = event_crud.fan_out(conversation_id, type, rows, utcnow())
    if recipients:
        wake_after_commit(recipients)


def wake_after_commit(user_ids: Iterable[int]) -> None:
    """Wake these users' waiting event readers once the transaction commits (they re-check)."""
    # One wake-up per transaction, for every user it wrote events for.
    pending: set[int] | None = db.session.info.get(_PENDING_KEY)
    if pending is None:
        pending = db.session.info[_PENDING_KEY] = set()
        hub = waker()
        after_commit(lambda: hub.publish(pending))
    pending.update(user_ids)


def event_view(event: UserEvent) -> dict[str, Any]:
    """Return a log row as the API's Event."""
    return {
        "cursor": str(event.seq),
        "type": event.type,
        "conversation_id": event.conversation_id,
        "data": event.data,
        "created_at": event.created_at,
    }


def parse_cursor(cursor: str | None) -> int | None:
    """Turn a client's cursor into a log position (422 when it is not one of ours)."""
    if cursor is None:
        return None
    # ASCII digits only: str.isdigit() also takes superscripts ("²"), which int() refuses.
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
        raise FieldError("The cursor is malformed.", "since", "Invalid cursor.")
    return int(cursor)


def _check_cursor(user_id: int, since: int) -> int:
    last, pruned = event_crud.positions(user_id)
    if since < pruned:
        raise CursorExpiredError()
    if since > last:
        raise FieldError("The cursor is ahead of this user's events.", "since", "Unknown cursor.")
    return last


class SessionEndedError(AppError):
    """401: the session of the token that opened this long-poll ended while it waited."""

    status_code = 401
    code = "token_revoked"
    message = "The session of this token has ended."


def open_connection(user_id: int) -> Slot:
    """Take one of the user's event connections (``EVENTS_MAX_CONNECTIONS_PER_USER``).

    TooManyConnectionsError (429) when the user holds them all; release the slot when done.
    """
    config = current_app.config
    slots = get_slots(config["REDIS_URL"], config["REDIS_PREFIX"])
    return slots.take(user_id, int(config["EVENTS_MAX_CONNECTIONS_PER_USER"]))


def poll(
    user_id: int,
    since: int | None,
    timeout: float,
    still_valid: Callable[[], bool],
    session_id: int | None = None,
) -> dict[str, Any]:
    """Return the events after ``since``, waiting up to ``timeout`` seconds for the first one.

    Without ``since``: no events, and the current cursor as a starting point. The database
    connection goes back to the pool while the request waits. Events of conversations the user
    has left are skipped without waiting. If the token's session ends (logout, revocation)
    while the request waits, it answers 401 and delivers nothing more. A waiting long-poll
    holds one of the user's event connections (TooManyConnectionsError when none is left).
    """
    if since is None:
        last, _ = event_crud.positions(user_id)
        end_read()
        return {"events": [], "next": str(last)}
    _check_cursor(user_id, since)
    if timeout <= 0:
        return _poll(user_id, since, timeout, still_valid, None)
    slot = open_connection(user_id)
    try:
        return _poll(user_id, since, timeout, still_valid, slot, session_id)
    finally:
        slot.release()


def _poll(
    user_id: int,
    since: int,
    timeout: float,
    still_valid: Callable[[], bool],
    slot: Slot | None,
    session_id: int | None = None,
) -> dict[str, Any]:
    hub = waker()
    listener = hub.attach(user_id)
    waits = slot is not None  # a long-poll that may wait is an event connection (presence)
    try:
        if waits:
            presence_service.connected(user_id, session_id)
        try:
            return _poll_until(hub, listener, since, timeout, still_valid)
        finally:
            if waits:
                presence_service.disconnected(user_id, session_id)
    finally:
        hub.detach(listener)


def _poll_until(
    hub: Waker,
    listener: Listener,
    since: int,
    timeout: float,
    still_valid: Callable[[], bool],
) -> dict[str, Any]:
    user_id = listener.user_id
    deadline = time.monotonic() + timeout
    first = True
    while True:
        version = hub.version(user_id)
        if not first and not still_valid():
            end_read()
            raise SessionEndedError()
        first = False
        events, scanned = event_crud.events_after(user_id, since, BATCH)
        views = [event_view(e) for e in events]
        end_read()
        more = scanned > since  # a batch of hidden events: read on at once
        since = scanned
        remaining = deadline - time.monotonic()
        if views or remaining <= 0 or shutting_down():
            # Stopping: answer now with what there is; the client polls again elsewhere.
            return {"events": views, "next": str(since)}
        if not more:
            hub.wait(listener, version, remaining, position=since)


def start_stream(user_id: int, cursor: str | None) -> int:
    """Validate where a stream starts: after ``cursor``, or at the current position."""
    since = parse_cursor(cursor)
    if since is None:
        last, _ = event_crud.positions(user_id)
        end_read()
        return last
    _check_cursor(user_id, since)
    end_read()
    return since


@transactional
def prune(retention_days: int) -> int:
    """Delete events older than the retention window; return how many."""
    return event_crud.prune(datetime.now(UTC) - timedelta(days=retention_days))
