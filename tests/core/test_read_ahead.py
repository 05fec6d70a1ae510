"""Reading ahead for woken streams: read for all of them first, then wake each once."""

from __future__ import annotations

import threading
import time

import pytest

from app.core.peer import Listener
from app.core.read_ahead import ReadAhead
from app.core.wakeup import Waker
from tests.core.test_wakeup import settle


def waiting(waker: Waker, listener: Listener, position: int) -> list[bool]:
    """Make ``listener`` wait at ``position`` on a thread; the list gets what the wait says."""
    result: list[bool] = []
    seen = waker.version(listener.user_id)
    before = waker.waiting()
    threading.Thread(
        target=lambda: result.append(waker.wait(listener, seen, 10, position)), daemon=True
    ).start()
    settle(lambda: waker.waiting() > before)
    return result


def test_a_commit_hands_waiting_readers_over_and_wakes_them_after_the_read() -> None:
    waker = Waker("", poll_seconds=60)
    reads: list[list[tuple[int, int | None]]] = []
    woken_during_read: list[bool] = []

    def read_many(listeners: list[Listener]) -> None:
        reads.append([(listener.user_id, listener.position) for listener in listeners])
        woken_during_read.append(any(listener.event.is_set() for listener in listeners))
        for listener in listeners:
            listener.answer = (listener.position or 0, waker.version(listener.user_id), "read")

    ahead = ReadAhead(read_many)
    listeners = [waker.attach(user_id) for user_id in (1, 1, 2)]
    results = []
    for listener, position in zip(listeners, (5, 6, 9), strict=True):
        listener.read_ahead = ahead
        results.append(waiting(waker, listener, position))
    other = waker.attach(3)
    other_result = waiting(waker, other, 0)
    waker.publish([1, 2])
    settle(lambda: all(results))
    assert results == [[True], [True], [True]] and other_result == []
    assert sorted(pair for batch in reads for pair in batch) == [(1, 5), (1, 6), (2, 9)]
    assert woken_during_read == [False] * len(reads)  # each woke once, after its answer
    version = waker.version(1)
    assert listeners[0].take_answer(5, version) == "read"
    assert listeners[0].take_answer(5, version) is None  # used once
    assert listeners[1].take_answer(6, version + 1) is None  # read before a later commit
    assert listeners[2].take_answer(8, waker.version(2)) is None  # read from elsewhere
    waker.publish([3])
    settle(lambda: other_result)


def test_a_reader_that_is_not_waiting_is_woken_directly() -> None:
    waker = Waker("", poll_seconds=60)
    handed: list[Listener] = []
    listener = waker.attach(4)
    listener.read_ahead = ReadAhead(handed.extend)
    waker.publish([4])  # busy writing, say: it checks its version before it waits again
    assert listener.event.is_set() and handed == []


def test_a_failed_read_ahead_still_wakes_its_readers(caplog: pytest.LogCaptureFixture) -> None:
    waker = Waker("", poll_seconds=60)

    def read_many(listeners: list[Listener]) -> None:
        raise RuntimeError("the database is down")

    listener = waker.attach(5)
    listener.read_ahead = ReadAhead(read_many)
    result = waiting(waker, listener, 0)
    waker.publish([5])
    settle(lambda: result)
    assert result == [True] and listener.answer is None  # it reads on its own
    settle(lambda: "reading ahead for 1 woken streams failed" in caplog.text)
    assert "the database is down" in caplog.text


def test_readers_handed_over_during_a_read_are_read_for_next() -> None:
    waker = Waker("", poll_seconds=60)
    started, release = threading.Event(), threading.Event()
    batches: list[int] = []

    def read_many(listeners: list[Listener]) -> None:
        batches.append(len(listeners))
        started.set()
        release.wait(5)

    ahead = ReadAhead(read_many)
    first, second, third = (waker.attach(user_id) for user_id in (6, 7, 8))
    results = []
    for listener in (first, second, third):
        listener.read_ahead = ahead
        results.append(waiting(waker, listener, 0))
    waker.publish([6])
    assert started.wait(5)
    waker.publish([7])
    waker.publish([8])  # both while the first read runs: one read for the two, after it
    time.sleep(0.1)
    release.set()
    settle(lambda: all(results))
    assert batches == [1, 2]
