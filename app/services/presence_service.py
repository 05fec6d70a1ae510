"""Presence: who is online, told to the people they share a conversation with.

A user is ``online`` while they hold an event connection (a stream or a waiting long-poll) to
any process, and for ``PRESENCE_TIMEOUT_SECONDS`` (60) after the last one closed; else
``offline``. The database keeps one timestamp per user, ``last_seen_at``, and each process keeps
a :class:`Clock` of its own connections:

- a user's first connection to a process sets ``last_seen_at``; when it was older than the
  timeout (the user was offline), the members of their conversations get ``presence online``.
  One conditional UPDATE decides, so of two processes racing only one announces it;
- every third of the timeout, each process refreshes ``last_seen_at`` for all its connected
  users together (one statement per thousand users, however many connections they hold);
- a user's last connection to a process sets it once more, and a timeout later the process
  looks again: if no process refreshed it since, the user went offline, and the members of
  their conversations get ``presence offline``. Only the process that saw the user last can
  find it unchanged, so the announcement is made once.

Presence events go to the members of conversations of up to ``PRESENCE_EVENTS_MAX_MEMBERS``
(100): in a bigger group, everyone coming online would be told to everyone (a million events
when a 1,000-member group connects), so its clients read ``GET …/presence`` instead.

``show_presence: false`` makes a user ``offline`` with ``last_seen_at: null`` to everyone else:
their presence is never announced, and turning it off or on is announced as the change it is.
Presence events are ephemeral (open streams only, never logged), like typing; without Redis
they reach the streams of the announcing process only.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app

from app.core.utils import iso_z
from app.core.wakeup import waker_for
from app.crud import conversation_crud
from app.database.base import utcnow
from app.database.connection import end_read
from app.services import user_service

log = logging.getLogger("parley.presence")

ONLINE = "online"
OFFLINE = "offline"
_CLOCK_KEY = "parley.presence"
_clock_lock = threading.Lock()
_live_sessions: Callable[[Sequence[int]], set[int]] | None = None


def _timeout(app: Flask) -> float:
    return float(app.config["PRESENCE_TIMEOUT_SECONDS"])


def view(
    user_id: int, last_seen_at: datetime | None, shown: bool, now: datetime, *, own: bool = False
) -> dict[str, Any]:
    """Return a user's presence as others see it (``own``: as they see it themself).

    The one definition of ``online``.
    """
    if not shown and not own:
        return {"user_id": user_id, "status": OFFLINE, "last_seen_at": None}
    window = timedelta(seconds=_timeout(current_app))
    online = last_seen_at is not None and last_seen_at >= now - window
    return {
        "user_id": user_id,
        "status": ONLINE if online else OFFLINE,
        "last_seen_at": last_seen_at,
    }


def presence_of(viewer_id: int, user_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Return these users' presence as the viewer sees it, by user id."""
    rows = user_service.presence(user_ids)
    end_read()
    now = utcnow()
    return [view(uid, *rows[uid], now, own=uid == viewer_id) for uid in sorted(rows)]


def update_profile(user_id: int, **changes: Any) -> Any:
    """``PATCH /users/me``: change the caller's profile and return it (UserPrivate).

    A flip of ``show_presence`` is announced to the others as the change of presence it is.
    """
    shown_before = user_service.get_own_account(user_id)["show_presence"]
    user = user_service.update_profile(user_id, **changes)
    if user.show_presence != shown_before and user.last_seen_at is not None:
        public = view(user.id, user.last_seen_at, user.show_presence, utcnow())
        announce(user.id, public["status"], public["last_seen_at"])
    return user


def announce(user_id: int, status: str, last_seen_at: datetime | None) -> None:
    """Tell the open streams of everyone sharing a conversation with the user (ephemeral)."""
    config = current_app.config
    others = conversation_crud.co_member_ids(user_id, int(config["PRESENCE_EVENTS_MAX_MEMBERS"]))
    end_read()
    seen = iso_z(last_seen_at) if last_seen_at is not None else None
    data = {"user_id": user_id, "status": status, "last_seen_at": seen}
    waker_for(config).publish_ephemeral(others, "presence", data)


def check_sessions_with(live_sessions: Callable[[Sequence[int]], set[int]]) -> None:
    """Give the real-time tier its check: which of these auth sessions are live."""
    global _live_sessions
    _live_sessions = live_sessions


def live_sessions(session_ids: Sequence[int]) -> set[int]:
    """Return which of these auth sessions are live (the check ``create_app`` handed in)."""
    assert _live_sessions is not None, "create_app() hands the real-time tier its session check"
    return _live_sessions(session_ids) if session_ids else set()


def connected(user_id: int, session_id: int | None = None) -> None:
    """Count an event connection that opens in this process (announces the user online).

    ``session_id``: the auth session of its token, checked by the sweep.
    """
    clock = _clock()
    if not clock.add(user_id, session_id):
        return
    now = utcnow()
    offline_before = now - timedelta(seconds=_timeout(current_app))
    try:
        if user_service.come_online(user_id, now, offline_before):  # was offline, and shown
            announce(user_id, ONLINE, now)
    except BaseException:
        clock.remove(user_id, session_id)
        raise


def disconnected(user_id: int, session_id: int | None = None) -> None:
    """Count an event connection that closed (the user may go offline a timeout later)."""
    _clock().remove(user_id, session_id)


def _clock() -> Clock:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    with _clock_lock:
        clock = app.extensions.get(_CLOCK_KEY)
        if clock is None:
            clock = app.extensions[_CLOCK_KEY] = Clock(app)
        return clock


class Clock:
    """One process's event connections per user, its heartbeat, sweep and offline checks.

    The sweep, at each heartbeat, checks the auth sessions of every connection of the process
    (a statement per thousand sessions) and wakes the connections of revoked ones, which then
    end: a revocation made in another process while Redis is down still ends them within a
    third of the timeout, without a statement per connection.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.timeout = _timeout(app)
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}
        self._sessions: Counter[tuple[int, int]] = Counter()  # (user, session) of connections
        self._gone: set[int] = set()
        #: (due on the monotonic clock, user, the last_seen_at this process wrote)
        self._checks: list[tuple[float, int, datetime]] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, user_id: int, session_id: int | None) -> bool:
        """Count a connection; True when it is the user's first in this process."""
        with self._lock:
            count = self._counts.get(user_id, 0)
            self._counts[user_id] = count + 1
            if session_id is not None:
                self._sessions[user_id, session_id] += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="parley-presence", daemon=True
                )
                self._thread.start()
        return count == 0

    def remove(self, user_id: int, session_id: int | None) -> None:
        """Forget a connection; after the user's last one, their last_seen_at is written."""
        with self._lock:
            if session_id is not None:
                self._sessions[user_id, session_id] -= 1
                if self._sessions[user_id, session_id] <= 0:
                    del self._sessions[user_id, session_id]
            count = self._counts.get(user_id, 0) - 1
            if count > 0:
                self._counts[user_id] = count
                return
            self._counts.pop(user_id, None)
            self._gone.add(user_id)
        self._wake.set()

    def connected_users(self) -> list[int]:
        """Return the users holding an event connection to this process."""
        with self._lock:
            return list(self._counts)

    def _run(self) -> None:
        beat_every = self.timeout / 3
        next_beat = time.monotonic() + beat_every
        while True:
            with self._lock:
                due = self._checks[0][0] if self._checks else next_beat
            self._wake.wait(max(min(due, next_beat) - time.monotonic(), 0))
            self._wake.clear()
            with self._lock:  # nothing to do: stop (the next connection starts a new thread)
                if not (self._counts or self._gone or self._checks):
                    self._thread = None
                    return
            try:
                with self.app.app_context():
                    self._write_gone()
                    if time.monotonic() >= next_beat:
                        next_beat = time.monotonic() + beat_every
                        self._beat()
                    self._check_due()
            except Exception:  # the database is away: try again at the next turn
                log.exception("presence update failed")
                time.sleep(1)

    def _write_gone(self) -> None:
        with self._lock:
            gone = [uid for uid in self._gone if uid not in self._counts]
            self._gone.clear()
        if not gone:
            return
        now = utcnow()
        user_service.mark_seen(gone, now)
        due = time.monotonic() + self.timeout + 0.2
        with self._lock:
            for user_id in gone:
                heapq.heappush(self._checks, (due, user_id, now))

    def _beat(self) -> None:
        users = self.connected_users()
        if users:
            user_service.mark_seen(users, utcnow())
        with self._lock:
            sessions = list(self._sessions)
        if sessions:
            live = live_sessions(sorted({sid for _, sid in sessions}))
            end_read()
            ended = {uid for uid, sid in sessions if sid not in live}
            if ended:  # their connections wake, check their session and end
                waker_for(self.app.config).notify_local(ended)

    def _check_due(self) -> None:
        now = time.monotonic()
        due: list[tuple[int, datetime]] = []
        with self._lock:
            while self._checks and self._checks[0][0] <= now:
                _, user_id, written = heapq.heappop(self._checks)
                if user_id not in self._counts:
                    due.append((user_id, written))
        if due:
            self._announce_offline(due)

    def _announce_offline(self, due: Sequence[tuple[int, datetime]]) -> None:
        rows = user_service.presence([uid for uid, _ in due])
        end_read()
        for user_id, written in due:
            last_seen_at, shown = rows.get(user_id, (None, False))
            # Refreshed since: another process holds (or held) a connection and will look.
            if shown and last_seen_at is not None and last_seen_at <= written:
                announce(user_id, OFFLINE, written)
