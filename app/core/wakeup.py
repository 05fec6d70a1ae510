"""Wake waiting event readers when a transaction that wrote their events commits.

Each open event connection (a long-poll, a stream) is a :class:`Listener`, filed under its user.
A commit wakes the readers of the users it wrote events for, and no others: in this process
directly and, when ``REDIS_URL`` is set, in every other process through one Redis subscription
per process (on a channel named after ``REDIS_PREFIX``, so that deployments sharing a Redis never
wake each other's readers). Waking costs what the commit's recipients cost, however many readers
wait.

Pub/sub is at-most-once and Redis may be down. While the subscription is not up, one poller per
process checks the database for *all* its waiting readers together, every
``EVENTS_POLL_SECONDS``, in one statement (each reader's user and position), and wakes those
whose log moved: the statements per second stay the same for ten readers or ten thousand.

The same subscription carries **ephemeral events** (typing, presence): they go to the open
streams of their recipients in every process, and are never written anywhere. Without Redis they
reach the streams of the process that made them only.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from app.core import redis_pool
from app.core.peer import Listener
from app.core.read_ahead import ReadAhead
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
        #: Names this process's wake-ups on the channel, so that it skips their echo: it woke
        #: its own readers when it published (a second wake-up would make each read again).
        self.origin = secrets.token_hex(8)
        self._lock = threading.Lock()
        self._versions: defaultdict[int, int] = defaultdict(int)
        #: Each open event connection, under its user.
        self._listeners: dict[int, set[Listener]] = {}
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

    def attach(self, user_id: int, ephemeral: bool = False) -> Listener:
        """Register an open event connection; ``ephemeral``: it takes typing and presence."""
        self._ensure_started()
        listener = Listener(user_id, ephemeral)
        with self._lock:
            self._listeners.setdefault(user_id, set()).add(listener)
        return listener

    def detach(self, listener: Listener) -> None:
        """Forget a closed event connection."""
        with self._lock:
            listeners = self._listeners.get(listener.user_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[listener.user_id]

    def wait(self, listener: Listener, seen_version: int, timeout: float, position: int) -> bool:
        """Sleep until the listener is woken, or ``timeout`` seconds pass.

        ``seen_version`` (from :meth:`version`, taken before the reader checked the database)
        and ``position`` (how far that check read) make sure that nothing committed since then
        is slept through. Returns True when woken (by its log, an ephemeral event, a hang-up or
        the process stopping), False when the time ran out.
        """
        with self._lock:
            if (
                self._versions[listener.user_id] != seen_version
                or _stopping.is_set()
                or listener.inbox
                or listener.hung_up
            ):
                return True
            listener.event.clear()
            listener.position = position
        try:
            return listener.event.wait(max(timeout, 0))
        finally:
            listener.position = None

    def waiting(self) -> int:
        """Return how many readers of this process are waiting."""
        with self._lock:
            return sum(
                1
                for listeners in self._listeners.values()
                for listener in listeners
                if listener.position is not None
            )

    def connected_users(self) -> list[int]:
        """Return the users holding an event connection to this process."""
        with self._lock:
            return list(self._listeners)

    @property
    def redis_healthy(self) -> bool:
        """Whether wake-ups from other processes currently arrive through Redis."""
        return self._subscribed.is_set()

    # -- notifying ------------------------------------------------------------------------

    def notify_local(self, user_ids: Iterable[int]) -> None:
        """Wake this process's readers of these users.

        A waiting reader with a read-ahead is handed to it instead, which reads for all of them
        at once and then wakes them (see :mod:`app.core.read_ahead`).
        """
        ahead: dict[ReadAhead[Listener], list[Listener]] = {}
        with self._lock:
            for user_id in user_ids:
                self._versions[user_id] += 1
                for listener in self._listeners.get(user_id, ()):
                    if listener.read_ahead is not None and listener.position is not None:
                        ahead.setdefault(listener.read_ahead, []).append(listener)
                    else:
                        listener.event.set()
            for read_ahead, listeners in ahead.items():
                read_ahead.submit(listeners)

    def deliver_local(self, user_ids: Iterable[int], type: str, data: Mapping[str, Any]) -> None:
        """Hand an ephemeral event to this process's open streams of these users."""
        with self._lock:
            for user_id in user_ids:
                for listener in self._listeners.get(user_id, ()):
                    if listener.inbox is not None:
                        listener.inbox.append((type, data))
                        listener.event.set()

    def publish(self, user_ids: Iterable[int]) -> None:
        """Wake the readers of these users in this process and, through Redis, everywhere."""
        ids = sorted(set(user_ids))
        if not ids:
            return
        self.notify_local(ids)
        if not self.redis_url:
            return
        message = json.dumps({"users": ids, "from": self.origin})  # its own echo is skipped
        try:
            self._redis().publish(self.channel, message)
        except Exception as error:  # Redis down: readers elsewhere fall back to the poller
            self._publisher = None
            self._log_error("publish failed, readers elsewhere fall back to polling: %s", error)

    def publish_ephemeral(
        self, user_ids: Iterable[int], type: str, data: Mapping[str, Any]
    ) -> None:
        """Send an ephemeral event to these users' open streams, in every process with Redis."""
        ids = sorted(set(user_ids))
        if not ids:
            return
        if not self.redis_url:
            self.deliver_local(ids, type, data)
            return
        message = json.dumps({"to": ids, "type": type, "data": data})  # JSON data only
        try:  # every process, this one included, delivers it from the subscription
            self._redis().publish(self.channel, message)
        except Exception as error:  # Redis down: this process's streams only
            self._publisher = None
            self._log_error("ephemeral event not shared, Redis is down: %s", error)
            self.deliver_local(ids, type, data)

    def wake_all(self) -> None:
        """Wake every reader of this process (they re-check: stopping, say)."""
        with self._lock:
            for listeners in self._listeners.values():
                for listener in listeners:
                    listener.event.set()

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
            self._publisher = redis_pool.client(self.redis_url)
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
                        self._received(json.loads(message["data"]))
            except Exception as error:
                self._subscribed.clear()
                self._log_error("subscriber lost Redis, polling the database: %s", error)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _received(self, payload: Any) -> None:
        if isinstance(payload, list):  # the users whose logs moved, from an older process
            self.notify_local(payload)
        elif "users" in payload:  # the users whose logs moved
            if payload.get("from") != self.origin:  # this process woke its own at publish
                self.notify_local(payload["users"])
        else:  # an ephemeral event
            self.deliver_local(payload["to"], payload["type"], payload["data"])

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
        seen: dict[int, int] = {}  # per waiting user, the lowest position one of them has read
        with self._lock:
            for user_id, listeners in self._listeners.items():
                for listener in listeners:
                    position = listener.position
                    if position is not None:
                        seen[user_id] = min(seen.get(user_id, position), position)
        if not seen or self._read_positions is None:
            return
        newest = self._read_positions(sorted(seen))
        self.polls += 1
        moved = [user_id for user_id, position in newest.items() if position > seen[user_id]]
        if moved:
            self.notify_local(moved)

    def _wake_everyone(self) -> None:
        with self._lock:
            for user_id in list(self._listeners):
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


def waker_for(config: Mapping[str, Any]) -> Waker:
    """Return this process's waker for an app's configuration."""
    return get_waker(
        config["REDIS_URL"], float(config["EVENTS_POLL_SECONDS"]), config["REDIS_PREFIX"]
    )
