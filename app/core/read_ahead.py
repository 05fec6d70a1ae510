"""Read what woken streams will read before waking them, so each wakes once, to write.

A message into a 1,000-member group wakes about 2,500 streams per process. Woken one by one,
each would run up to its read, queue it (:mod:`app.core.batching`) and sleep again until the
read for all of them is done, then wake a second time to write: two wake-ups per stream, and
the read starts only after the last stream queued. A stream that waits with a
:class:`ReadAhead` on its listener is instead handed, by :mod:`app.core.wakeup`, to the
read-ahead's own thread (a greenlet under gevent): it reads for every listener a wake-up
reached, at once, leaves each listener its answer, and only then wakes them.

An answer says what it was read for (the reader's position, and the user's wake-up version
just before the read); a stream uses it only if both still hold, and reads on its own
otherwise (another commit came in meanwhile, or it woke early for something else).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("parley.read_ahead")


class Wakeable(Protocol):
    """What a read-ahead wakes (an :class:`app.core.peer.Listener`)."""

    event: threading.Event


L = TypeVar("L", bound=Wakeable)


class ReadAhead(Generic[L]):
    """One thread that reads for the listeners handed to it, then wakes them.

    ``read_many(listeners)`` reads for these waiting listeners and leaves each its answer.
    """

    def __init__(self, read_many: Callable[[list[L]], None]) -> None:
        self._read_many = read_many
        self._lock = threading.Lock()
        self._queued: dict[L, None] = {}  # in the order handed, once each
        self._work = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, listeners: list[L]) -> None:
        """Hand over woken listeners (never blocks: the waker calls it under its lock)."""
        with self._lock:
            self._queued.update(dict.fromkeys(listeners))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="parley-read-ahead", daemon=True
                )
                self._thread.start()
        self._work.set()

    def _run(self) -> None:
        while True:
            self._work.wait()
            self._work.clear()
            with self._lock:
                listeners, self._queued = list(self._queued), {}
            if not listeners:
                continue
            try:
                self._read_many(listeners)
            except Exception:  # each woken stream reads on its own instead
                log.exception("reading ahead for %d woken streams failed", len(listeners))
            finally:
                for listener in listeners:
                    listener.event.set()
