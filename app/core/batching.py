"""Coalesce look-ups that many threads (or greenlets) make at once into one call for them all.

A wake-up that reaches thousands of open event streams of a process makes them all ask the
database the same kind of question at the same moment (is my session live? what is after my
position?). Asked one by one, a 1,000-member group's message costs a statement per stream and
queues thousands of readers on the connection pool. Through a :class:`Batcher`, the first caller
answers: it lets every caller that is ready to run queue its key, then asks once for everything
queued (up to ``max_keys`` a call), and again for what was queued meanwhile, until the queue is
empty. A wave of N callers costs about N / ``max_keys`` calls, and callers asking for the same
key share one answer.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: How often a queued caller checks that someone is still answering (a safety net only: the
#: caller that answers always settles every key it took, whatever happens).
_LEADER_CHECK_SECONDS = 1.0


class _Pending(Generic[V]):
    """One key's answer, waited for by every caller of that key.

    Each caller waits on an event of its own, never several on one: under gevent, several
    greenlets waiting with a timeout on one shared ``threading.Event`` were seen to stay
    asleep after it was set (their timeouts did not fire either), by the hundred, when a
    wake-up reached thousands of streams. One waiter per event is what every listener of
    :mod:`app.core.wakeup` does too.
    """

    def __init__(self) -> None:
        self.waiters: list[threading.Event] = []
        self.value: V | None = None
        self.error: BaseException | None = None

    def wait_here(self) -> threading.Event:
        """Return a new event that :meth:`settle` sets (under the batcher's lock)."""
        event = threading.Event()
        self.waiters.append(event)
        return event

    def settle(self, value: V | None, error: BaseException | None) -> None:
        """Record the answer and wake every caller of the key."""
        self.value, self.error = value, error
        for event in self.waiters:
            event.set()

    def result(self) -> V:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # settled, without an error


class Batcher(Generic[K, V]):
    """Answer :meth:`get` for many concurrent callers with few calls of ``fetch_many``.

    ``fetch_many(keys)`` must return an answer for every key it is given. It runs on whichever
    caller is answering at the time, in that caller's context (an app context, say), so every
    caller of one batcher must be able to run it alike.
    """

    def __init__(self, fetch_many: Callable[[list[K]], Mapping[K, V]], max_keys: int = 1000):
        self._fetch_many = fetch_many
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._queued: dict[K, _Pending[V]] = {}
        self._answering = False
        #: Calls of ``fetch_many`` made (for the tests).
        self.calls = 0

    def get(self, key: K) -> V:
        """Return ``fetch_many``'s answer for ``key``, asked together with concurrent callers."""
        with self._lock:
            pending = self._queued.get(key)
            if pending is None:
                pending = self._queued[key] = _Pending()
            answered = pending.wait_here()  # a taken key is not found again: no waiter is late
            answer = self._take_turn()
        while True:
            if answer:
                self._answer_queued()
            if answered.wait(_LEADER_CHECK_SECONDS):
                return pending.result()
            with self._lock:
                answer = self._take_turn()

    def _take_turn(self) -> bool:
        """Become the caller that answers, if nobody is (under the lock)."""
        if self._answering:
            return False
        self._answering = True
        return True

    def _answer_queued(self) -> None:
        # Let every caller that is ready to run queue its key first (a wake-up makes thousands
        # ready at once): under gevent this runs them up to their wait; with threads it only
        # offers the GIL.
        time.sleep(0)
        while True:
            with self._lock:
                if not self._queued:
                    self._answering = False
                    return
                batch = {
                    key: self._queued.pop(key)
                    for key in list(itertools.islice(self._queued, self._max_keys))
                }
            found: Mapping[K, V] = {}
            error: BaseException | None = None
            try:
                self.calls += 1
                found = self._fetch_many(list(batch))
            except BaseException as exc:
                error = exc
                if not isinstance(exc, Exception):  # the answering caller is being stopped
                    with self._lock:
                        self._answering = False
                    raise
            finally:
                for key, pending in batch.items():
                    if error is not None:
                        pending.settle(None, error)
                    elif key in found:
                        pending.settle(found[key], None)
                    else:
                        pending.settle(None, KeyError(key))


_registry_lock = threading.Lock()


def batcher_in(
    registry: dict[str, object],
    name: str,
    fetch_many: Callable[[list[K]], Mapping[K, V]],
    max_keys: int = 1000,
) -> Batcher[K, V]:
    """Return the batcher ``name`` kept in ``registry`` (an app's ``extensions``), made once.

    One per app, not per process: a test process serves apps on different databases, and a
    caller must never answer for another app's callers.
    """
    with _registry_lock:
        found = registry.get(name)
        if not isinstance(found, Batcher):
            found = registry[name] = Batcher(fetch_many, max_keys)
        return found
