"""Queues in the worker in front of hot database row locks.

When many requests of one worker write to the same row at once (sends into one busy
conversation), each would otherwise wait in PostgreSQL's lock queue. PostgreSQL pays for every
waiter: a waiter that is finally granted the lock re-reads the row's newest version, and a
queue of thirty waiters on one row multiplies the database's CPU per write (figures in
docs/PERFORMANCE.md). A :class:`LocalQueue` lets such requests wait in the worker instead, so
at most one request per worker waits in the database.

The queue is an optimisation only: the database row lock still decides the order and guards
every invariant. A request that has waited longer than ``timeout`` goes ahead to the database,
so a stuck request can delay the others but never block them.

The lock must be taken before the request opens its transaction and held until it has
committed or rolled back; a request holds at most one. Then no request waits for a worker lock
while holding a database lock, and the two kinds of lock cannot deadlock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class LocalQueue:
    """Striped per-key locks of one worker process, with a bounded wait.

    Keys map to a fixed number of stripes, so memory does not grow with the number of keys; two
    keys sharing a stripe only queue behind each other within this worker.
    """

    def __init__(self, stripes: int = 64, timeout: float = 5.0) -> None:
        if stripes < 1:
            raise ValueError("stripes must be at least 1")
        self._locks = tuple(threading.Lock() for _ in range(stripes))
        self.timeout = timeout

    def stripe(self, key: int) -> int:
        """Return the stripe a key queues on."""
        return hash(key) % len(self._locks)

    @contextmanager
    def turn(self, key: int) -> Iterator[bool]:
        """Wait for this key's turn; yield True, or False when the wait timed out."""
        lock = self._locks[self.stripe(key)]
        acquired = lock.acquire(timeout=self.timeout)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()
