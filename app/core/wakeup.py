"""Wake waiting event readers when a transaction that wrote their events commits.

Each waiting reader (a long-poll, a stream) waits on an event of its own, filed under its user.
A commit wakes the readers of the users it wrote events for, and no others: in this process
directly and, when ``REDIS_URL`` is set, in every other process through one Redis subscription
per process (on a channel named after ``REDIS_PREFIX``, so that deployments sharing a Redis never
wake each other's readers). Waking costs what the commit's recipients cost, however many readers
wait.

Pub/sub is at-most-once and Redis may be down. While the subscription is not up, one poller per
process checks the database for *all* its waiting readers together, every
``EVENTS_POLL_SECONDS``, in one statement (each reader's user and position), and wakes those
whose log moved: the statements per second stay the same for ten readers or ten thousand.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from app.core.utils import on_gevent

log = logging.getLogger("parley.wakeup")

#: Reads the newest position of each of these users' logs (the database, in an app context).
PositionReader = Callable[[list[int]], dict[int, int]]

#: Set when the process is stopping (gunicorn's SIGTERM): waiting readers return at once.
_stopping = threading.Event()


def shutting_down() -> bool:
    """Whether this process has been asked to stop."""
    return _stopping.is_set()


def begin_shutdown() -> None:
    """Make every waiting long-poll return and every event stream end, so the process can stop.

    Safe to call from a signal handler: the waking happens on a thread of its own (a greenlet
    on gevent, where a signal handler runs in the event loop and may not wait for anything).
    """
    _stopping.set()

    def wake_all() -> None:
        with _wakers_lock:
            wakers = list(_wakers.values())
        for hub in wakers:
            hub.wake_all()

    if on_gevent():
        import gevent

        gevent.spawn(wake_all)
    else:
        threading.Thread(target=wake_all, name="parley-shutdown", daemon=True).start()


class Waker:
    """Per-process wake-ups for event readers, fanned out through Redis when it is there."""

    def __init__(self, redis_url: str = "", poll_seconds: float = 1.0, prefix: str = "parley"):
        self.redis_url = redis_url
        self.poll_seconds = poll_seconds
        self.channel = f"{prefix}:events"
        self._lock = threading.Lock()
        self._versions: defaultdict[int, int] = defaultdict(int)
        #: Each waiting reader: its wake-up event, under its user.
        self._waiters: dict[int, set[threading.Event]] = {}
        #: Per waiting user, the lowest log position a reader has seen: the poller wakes them
        #: when the log moves past it.
        self._seen: dict[int, int] = {}
        self._read_positions: PositionReader | None = None
        self._publisher: Any = None
        self._subscriber: threading.Thread | None = None
        self._poller: threading.Thread | None = None
        self._subscribed = threading.Event()
        self._start_lock = threading.Lock()
        self._last_error_log = 0.0
        #: Statements the poller ran (for the benchmark and the tests).
        self.polls = 0

    def read_positions_with(self, reader: PositionReader) -> None:
        """Give the poller its way to read log positions (once per process is enough)."""
        self._read_positions = reader

    @property
    def has_position_reader(self) -> bool:
        """Whether the poller can read log positions yet."""
        return self._read_positions is not None

    # -- waiting -------------------------------------------------------------------------

    def version(self, user_id: int) -> int:
        """Return the current wake-up version of a user, to pass to :meth:`wait`."""
        with self._lock:
            return self._versions[user_id]

    def wait(self, user_id: int, seen_version: int, timeout: float, position: int) -> bool:
        """Sleep until the user's readers are woken, or ``timeout`` seconds pass.

        ``seen_version`` (from :meth:`version`, taken before the reader checked the database)
        and ``position`` (how far that check read) make sure that nothing committed since then
        is slept through. Returns True when woken, False when the time ran out.
        """
        self._ensure_started()
        event = threading.Event()
        with self._lock:
            if self._versions[user_id] != seen_version or _stopping.is_set():
                return True
            self._waiters.setdefault(user_id, set()).add(event)
            self._seen[user_id] = min(self._seen.get(user_id, position), position)
        try:
            return event.wait(max(timeout, 0))
        finally:
            with self._lock:
                waiting = self._waiters.get(user_id)
                if waiting is not None:
                    waiting.discard(event)
                    if not waiting:
                        del self._waiters[user_id]
                        self._seen.pop(user_id, None)

    def waiting(self) -> int:
        """Return how many readers of this process are waiting."""
        with self._lock:
            return sum(len(events) for events in self._waiters.values())

    @property
    def redis_healthy(self) -> bool:
        """Whether wake-ups from other processes currently arrive through Redis."""
        return self._subscribed.is_set()

    # -- notifying ------------------------------------------------------------------------

    def notify_local(self, user_ids: Iterable[int]) -> None:
        """Wake this process's readers of these users."""
        with self._lock:
            for user_id in user_ids:
                self._versions[user_id] += 1
                for event in self._waiters.get(user_id, ()):
                    event.set()

    def publish(self, user_ids: Iterable[int]) -> None:
        """Wake the readers of these users in this process and, through Redis, everywhere."""
        ids = sorted(set(user_ids))
        if not ids:
            return
        self.notify_local(ids)
        if not self.redis_url:
            return
        try:
            self._redis().publish(self.channel, json.dumps(ids))
        except Exception as error:  # Redis down: readers elsewhere fall back to the poller
            self._publisher = None
            self._log_error("publish failed, readers elsewhere fall back to polling: %s", error)

    def wake_all(self) -> None:
        """Wake every waiting reader of this process (they re-check: stopping, say)."""
        with self._lock:
            for events in self._waiters.values():
                for event in events:
                    event.set()

    # -- the subscriber and the poller -------------------------------------------------------

    def _ensure_started(self) -> None:
        alive = (self._subscriber is not None and self._subscriber.is_alive()) or not self.redis_url
        if alive and self._poller is not None and self._poller.is_alive():
            return
        with self._start_lock:
            if self.redis_url and not (self._subscriber and self._subscriber.is_alive()):
                self._subscriber = threading.Thread(
                    target=self._listen, name="parley-wakeup", daemon=True
                )
                self._subscriber.start()
            if not (self._poller and self._poller.is_alive()):
                self._poller = threading.Thread(
                    target=self._poll_forever, name="parley-poller", daemon=True
                )
                self._poller.start()

    def _redis(self) -> Any:
        if self._publisher is None:
            import redis

            self._publisher = redis.Redis.from_url(
                self.redis_url, socket_timeout=1, socket_connect_timeout=1
            )
        return self._publisher

    def _listen(self) -> None:
        import redis

        backoff = 0.5
        while True:
            try:
                client = redis.Redis.from_url(
                    self.redis_url, socket_connect_timeout=1, health_check_interval=10
                )
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(self.channel)
                self._subscribed.set()
                backoff = 0.5
                # Anything published while we were away was missed: wake every reader once.
                self._wake_everyone()
                while True:
                    message = pubsub.get_message(timeout=5)
                    if message and message.get("type") == "message":
                        self.notify_local(json.loads(message["data"]))
            except Exception as error:
                self._subscribed.clear()
                self._log_error("subscriber lost Redis, polling the database: %s", error)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _poll_forever(self) -> None:
        while True:
            time.sleep(self.poll_seconds)
            if not self._subscribed.is_set():
                try:
                    self.poll_once()
                except Exception as error:  # the database is down: readers wait on
                    self._log_error("polling for events failed: %s", error)

    def poll_once(self) -> None:
        """Check the database once for every waiting reader; wake those whose log moved."""
        with self._lock:
            seen = dict(self._seen)
        if not seen or self._read_positions is None:
            return
        newest = self._read_positions(sorted(seen))
        self.polls += 1
        moved = [user_id for user_id, position in newest.items() if position > seen[user_id]]
        if moved:
            with self._lock:
                for user_id in moved:
                    if user_id in self._seen:
                        self._seen[user_id] = max(self._seen[user_id], newest[user_id])
            self.notify_local(moved)

    def _wake_everyone(self) -> None:
        with self._lock:
            for user_id in list(self._waiters):
                self._versions[user_id] += 1
        self.wake_all()

    def _log_error(self, message: str, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log > 10:  # one line per 10 s, not one per request
            self._last_error_log = now
            log.warning(message, error)


_wakers: dict[tuple[str, float, str], Waker] = {}
_wakers_lock = threading.Lock()


def get_waker(redis_url: str, poll_seconds: float, prefix: str = "parley") -> Waker:
    """Return this process's waker for these settings (one Redis subscriber per process)."""
    key = (redis_url, poll_seconds, prefix)
    with _wakers_lock:
        if key not in _wakers:
            _wakers[key] = Waker(redis_url, poll_seconds, prefix)
        return _wakers[key]
