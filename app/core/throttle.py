"""At most one action per key and interval, shared through Redis when there is one.

For signals that may be dropped when repeated (a typing indicator): the first call in an
interval says go, the others say skip. With ``REDIS_URL`` the interval is shared by every process
(``SET NX PX``, under ``REDIS_PREFIX``); without Redis, or while it is down, each process keeps
its own.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from app.core import redis_pool

log = logging.getLogger("parley.throttle")


class Throttle:
    """One per process and settings; see :func:`get_throttle`."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.redis_url, self.prefix = redis_url, prefix
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._client: Any = None
        self._last_error_log = 0.0

    def first(self, key: str, seconds: float) -> bool:
        """Whether this is the first call for ``key`` in the last ``seconds``."""
        if self.redis_url:
            try:
                if self._client is None:
                    self._client = redis_pool.client(self.redis_url)
                return bool(
                    self._client.set(
                        f"{self.prefix}:once:{key}", 1, nx=True, px=int(seconds * 1000)
                    )
                )
            except Exception as error:  # Redis down: this process decides alone
                self._client = None
                now = time.monotonic()
                if now - self._last_error_log > 10:
                    self._last_error_log = now
                    log.warning("throttle falls back to this process: %s", error)
        now = time.monotonic()
        with self._lock:
            if len(self._until) > 10_000:  # forget what has lapsed
                self._until = {k: t for k, t in self._until.items() if t > now}
            if self._until.get(key, 0.0) > now:
                return False
            self._until[key] = now + seconds
            return True


_throttles: dict[tuple[str, str], Throttle] = {}
_throttles_lock = threading.Lock()


def get_throttle(redis_url: str, prefix: str) -> Throttle:
    """Return this process's throttle for these settings."""
    with _throttles_lock:
        key = (redis_url, prefix)
        if key not in _throttles:
            _throttles[key] = Throttle(redis_url, prefix)
        return _throttles[key]
