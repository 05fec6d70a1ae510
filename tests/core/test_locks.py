"""The worker-local queue in front of hot row locks."""

from __future__ import annotations

import threading
import time

import pytest

from app.core.locks import LocalQueue


def test_one_key_takes_turns() -> None:
    queue = LocalQueue()
    order: list[str] = []
    first_in = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with queue.turn(7) as mine:
            assert mine
            order.append("first in")
            first_in.set()
            release_first.wait(5)
            order.append("first out")

    def second() -> None:
        first_in.wait(5)
        with queue.turn(7) as mine:
            assert mine
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_in.wait(5)
    time.sleep(0.05)  # the second is now waiting for its turn
    assert order == ["first in"]
    release_first.set()
    for thread in threads:
        thread.join(5)
    assert order == ["first in", "first out", "second in"]


def test_other_keys_do_not_wait() -> None:
    queue = LocalQueue(stripes=64, timeout=5)
    assert queue.stripe(1) != queue.stripe(2)
    with queue.turn(1) as held:
        started = time.monotonic()
        with queue.turn(2) as other:
            assert held and other
        assert time.monotonic() - started < 1


def test_a_stuck_turn_delays_but_never_blocks() -> None:
    queue = LocalQueue(stripes=1, timeout=0.05)
    with queue.turn(1) as held:
        assert held
        with queue.turn(99) as mine:  # same (only) stripe, held: the wait times out
            assert mine is False
    with queue.turn(99) as mine:  # the lock was not taken by the timed-out turn, nor leaked
        assert mine


def test_the_turn_ends_when_the_work_raises() -> None:
    queue = LocalQueue(stripes=1, timeout=0.05)
    with pytest.raises(RuntimeError), queue.turn(1):
        raise RuntimeError("failed send")
    with queue.turn(1) as mine:
        assert mine


def test_needs_a_stripe() -> None:
    with pytest.raises(ValueError):
        LocalQueue(stripes=0)
