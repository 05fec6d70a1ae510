"""Wake waiting event readers when a transaction that wrote their events commits.

Each process keeps a version number per user behind one condition variable; a reader notes the
version, checks the database, and sleeps until the version changes or its poll interval runs out.
A commit bumps the versions of the users it wrote events for, in this process directly and, when
``REDIS_URL`` is set, in every other process through Redis pub/sub. Pub/sub is at-most-once and
Redis may be down: readers then still poll the database every ``EVENTS_POLL_SECONDS``, so a lost
wake-up delays an event by at most that long and never loses it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("parley.wakeup")

CHANNEL = "parley:events"

#: Set when the process is stopping (gunicorn's SIGTERM): waiting readers return at once.
_stopping = threading.Event()


def shutting_down() -> bool:
    """Whether this process has been asked to stop."""
    return _stopping.is_set()


def begin_shutdown() -> None:
    """Make every waiting long-poll return and every event stream end, so the process can stop.

    Safe to call from a signal handler: the waking happens on a thread of its own.
    """
    _stopping.set()

    def wake_all() -> None:
        with _wakers_lock:
            wakers = list(_wakers.values())
        for hub in wakers:
            hub.wake_all()

    threading.Thread(target=wake_all, name="parley-shutdown", daemon=True).start()


class Waker:
    """Per-process wake-ups for event readers, optionally fanned out through Redis."""

    def __init__(self, redis_url: str = "", poll_seconds: float = 1.0) -> None:
        self.redis_url = redis_url
        self.poll_seconds = poll_seconds
        self._condition = threading.Condition()
        self._versions: defaultdict[int, int] = defaultdict(int)
        self._publisher: Any = None
        self._subscriber: threading.Thread | None = None
        self._subscribed = threading.Event()
        self._start_lock = threading.Lock()
        self._last_error_log = 0.0

    # -- waiting -------------------------------------------------------------------------

    def version(self, user_id: int) -> int:
        """Return the current wake-up version of a user, to pass to :meth:`wait`."""
        with self._condition:
            return self._versions[user_id]

    def wait(self, user_id: int, seen_version: int, timeout: float) -> bool:
        """Sleep until the user's version moves past ``seen_version`` or the next poll is due.

        Returns True when woken by a notification, False when the poll interval or the
        timeout ran out.
        """
        self._ensure_subscriber()
        limit = timeout if self._subscribed.is_set() else min(timeout, self.poll_seconds)
        with self._condition:
            return self._condition.wait_for(
                lambda: self._versions[user_id] != seen_version or _stopping.is_set(),
                timeout=max(limit, 0),
            )

    @property
    def redis_healthy(self) -> bool:
        """Whether wake-ups from other processes currently arrive through Redis."""
        return self._subscribed.is_set()

    # -- notifying ------------------------------------------------------------------------

    def notify_local(self, user_ids: Iterable[int]) -> None:
        """Wake this process's readers of these users."""
        with self._condition:
            for user_id in user_ids:
                self._versions[user_id] += 1
            self._condition.notify_all()

    def publish(self, user_ids: Iterable[int]) -> None:
        """Wake the readers of these users in this process and, through Redis, everywhere."""
        ids = sorted(set(user_ids))
        if not ids:
            return
        self.notify_local(ids)
        if not self.redis_url:
            return
        try:
            self._redis().publish(CHANNEL, json.dumps(ids))
        except Exception as error:  # Redis down: readers fall back to polling
            self._publisher = None
            self._log_error("publish failed, readers elsewhere fall back to polling: %s", error)

    # -- Redis ----------------------------------------------------------------------------

    def _redis(self) -> Any:
        if self._publisher is None:
            import redis

            self._publisher = redis.Redis.from_url(
                self.redis_url, socket_timeout=1, socket_connect_timeout=1
            )
        return self._publisher

    def _ensure_subscriber(self) -> None:
        if not self.redis_url or (self._subscriber and self._subscriber.is_alive()):
            return
        with self._start_lock:
            if self._subscriber and self._subscriber.is_alive():
                return
            self._subscriber = threading.Thread(
                target=self._listen, name="parley-wakeup", daemon=True
            )
            self._subscriber.start()

    def _listen(self) -> None:
        import redis

        backoff = 0.5
        while True:
            try:
                client = redis.Redis.from_url(
                    self.redis_url, socket_connect_timeout=1, health_check_interval=10
                )
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(CHANNEL)
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

    def wake_all(self) -> None:
        """Wake every waiting reader of this process (they re-check and see the shutdown)."""
        with self._condition:
            self._condition.notify_all()

    def _wake_everyone(self) -> None:
        with self._condition:
            for user_id in list(self._versions):
                self._versions[user_id] += 1
            self._condition.notify_all()

    def _log_error(self, message: str, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log > 10:  # one line per 10 s, not one per request
            self._last_error_log = now
            log.warning(message, error)


_wakers: dict[tuple[str, float], Waker] = {}
_wakers_lock = threading.Lock()


def get_waker(redis_url: str, poll_seconds: float) -> Waker:
    """Return this process's waker for these settings (one Redis subscriber per process)."""
    key = (redis_url, poll_seconds)
    with _wakers_lock:
        if key not in _wakers:
            _wakers[key] = Waker(redis_url, poll_seconds)
        return _wakers[key]
