"""How many event connections (streams and waiting long-polls) each user holds at once.

``EVENTS_MAX_CONNECTIONS_PER_USER`` (10) is the most a user may hold; one more is refused with
``429 too_many_connections``. With ``REDIS_URL`` the count is shared by every process and machine:
a sorted set per user, under ``REDIS_PREFIX``, whose members are the open connections, each with
the time it expires unless renewed. Each process renews all the slots it holds together, every
third of :data:`SLOT_SECONDS`, in a few pipelined calls (never one call per connection, and
never on a connection's way to its events), so a connection that died without saying so (its
process was killed) frees its slot within :data:`SLOT_SECONDS`. Without Redis, or while it is
down, each process counts its own connections.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
import weakref
from collections import defaultdict
from typing import Any

from app.core import redis_pool
from app.core.errors import AppError

log = logging.getLogger("parley.connections")

#: How long a slot lives without being renewed.
SLOT_SECONDS = 60.0

#: Take a slot if the user holds fewer than the limit: drop expired slots, count, add.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class TooManyConnectionsError(AppError):
    """429: the user already holds the most event connections allowed."""

    status_code = 429
    code = "too_many_connections"
    message = "Too many event connections are open for this user; close one, or retry later."

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


class Slot:
    """One held connection slot: release it when done (its process renews it meanwhile)."""

    def __init__(self, slots: ConnectionSlots, user_id: int, slot_id: str, shared: bool) -> None:
        self.slots, self.user_id, self.slot_id, self.shared = slots, user_id, slot_id, shared

    def release(self) -> None:
        """Give the slot back."""
        self.slots.release(self)


class ConnectionSlots:
    """Per-user counts of event connections, in Redis when there is one."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self._local: defaultdict[int, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._client: Any = None
        self._last_error_log = 0.0
        #: The shared slots this process holds, renewed together by :meth:`_renew_forever`.
        #: Weakly: a slot dropped without being released (a bug) is not renewed for ever, it
        #: lapses like one of a killed process.
        self._held: weakref.WeakValueDictionary[str, Slot] = weakref.WeakValueDictionary()
        self._renewer: threading.Thread | None = None

    def _key(self, user_id: int) -> str:
        return f"{self.prefix}:event-connections:{user_id}"

    def _redis(self) -> Any:
        if self._client is None:
            self._client = redis_pool.client(self.redis_url)
        return self._client

    def take(self, user_id: int, limit: int) -> Slot:
        """Take a slot for the user, or raise TooManyConnectionsError."""
        slot_id = secrets.token_hex(8)
        if self.redis_url:
            now = time.time()
            try:
                taken = self._redis().eval(
                    _TAKE,
                    1,
                    self._key(user_id),
                    now,
                    now + SLOT_SECONDS,
                    limit,
                    slot_id,
                    math.ceil(SLOT_SECONDS * 2),
                )
            except Exception as error:  # Redis down: count in this process instead
                self._client = None
                self._log_error("connection slots fall back to this process: %s", error)
            else:
                if not taken:
                    raise TooManyConnectionsError(retry_after=5)
                slot = Slot(self, user_id, slot_id, shared=True)
                with self._lock:
                    self._held[slot_id] = slot
                    if self._renewer is None or not self._renewer.is_alive():
                        self._renewer = threading.Thread(
                            target=self._renew_forever, name="parley-slots", daemon=True
                        )
                        self._renewer.start()
                return slot
        with self._lock:
            if self._local[user_id] >= limit:
                raise TooManyConnectionsError(retry_after=5)
            self._local[user_id] += 1
        return Slot(self, user_id, slot_id, shared=False)

    def _renew_forever(self) -> None:
        while True:
            time.sleep(SLOT_SECONDS / 3)
            self.renew_held()

    def renew_held(self) -> None:
        """Move on the expiry of every shared slot this process holds: a call per 500 users."""
        with self._lock:
            by_user: defaultdict[int, list[str]] = defaultdict(list)
            for slot in list(self._held.values()):
                by_user[slot.user_id].append(slot.slot_id)
        users = list(by_user.items())
        try:
            for start in range(0, len(users), 500):
                expires = time.time() + SLOT_SECONDS
                pipe = self._redis().pipeline(transaction=False)
                for user_id, slot_ids in users[start : start + 500]:
                    pipe.zadd(self._key(user_id), dict.fromkeys(slot_ids, expires))
                pipe.execute()
                time.sleep(0)  # under gevent: let connections run between the calls
        except Exception as error:  # tried again next time; a slot lapses only after a minute
            self._client = None
            self._log_error("could not renew connection slots: %s", error)

    def release(self, slot: Slot) -> None:
        """Give a slot back."""
        if slot.shared:
            with self._lock:
                self._held.pop(slot.slot_id, None)
            try:
                self._redis().zrem(self._key(slot.user_id), slot.slot_id)
            except Exception as error:  # it expires by itself
                self._client = None
                self._log_error("could not release a connection slot: %s", error)
            return
        with self._lock:
            self._local[slot.user_id] -= 1
            if self._local[slot.user_id] <= 0:
                del self._local[slot.user_id]

    def _log_error(self, message: str, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log > 10:
            self._last_error_log = now
            log.warning(message, error)


_slots: dict[tuple[str, str], ConnectionSlots] = {}
_slots_lock = threading.Lock()


def get_slots(redis_url: str, prefix: str) -> ConnectionSlots:
    """Return this process's slot counter for these settings."""
    with _slots_lock:
        key = (redis_url, prefix)
        if key not in _slots:
            _slots[key] = ConnectionSlots(redis_url, prefix)
        return _slots[key]
