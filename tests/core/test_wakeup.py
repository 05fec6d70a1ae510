"""Wake-ups between event writers and waiting readers, with and without Redis."""

from __future__ import annotations

import os
import threading
import time

import pytest
import redis

from app.core.wakeup import Waker, get_waker

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
DEAD_REDIS = "redis://127.0.0.1:1/0"


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def wait_in_thread(waker: Waker, user_id: int, timeout: float, position: int = 0) -> list[bool]:
    """Start a reader waiting for ``user_id``; the list gets its result when it returns."""
    result: list[bool] = []
    seen = waker.version(user_id)
    listener = waker.attach(user_id)
    waiting = waker.waiting()

    def wait() -> None:
        result.append(waker.wait(listener, seen, timeout, position))
        waker.detach(listener)

    threading.Thread(target=wait, daemon=True).start()
    deadline = time.monotonic() + 5
    while waker.waiting() == waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    return result


def settle(condition: object, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_local_notify_wakes_the_users_readers_only() -> None:
    waker = Waker("", poll_seconds=60)
    seven, eight = wait_in_thread(waker, 7, 10), wait_in_thread(waker, 8, 10)
    settle(lambda: waker.waiting() == 2)
    waker.publish([7, 7])
    settle(lambda: seven)
    assert seven == [True] and eight == []  # the other user's reader sleeps on
    assert waker.waiting() == 1
    waker.publish([8])
    settle(lambda: eight)
    assert eight == [True] and waker.waiting() == 0


def test_a_wake_up_between_check_and_wait_is_not_slept_through() -> None:
    waker = Waker("", poll_seconds=60)
    seen = waker.version(3)
    waker.publish([3])  # committed after the reader checked the database, before it waits
    assert waker.wait(waker.attach(3), seen, 10, position=0) is True


def test_a_wait_without_wake_up_times_out() -> None:
    waker = Waker("", poll_seconds=60)
    assert waker.wait(waker.attach(1), waker.version(1), 0.1, position=0) is False
    waker.publish([])  # nothing to do


def test_without_redis_one_poll_reads_every_waiting_reader() -> None:
    """The poller reads all waiting users' positions in one call and wakes those that moved."""
    waker = Waker("", poll_seconds=60)
    reads: list[list[int]] = []
    logs = {user_id: 5 for user_id in range(1, 101)}

    def read(user_ids: list[int]) -> dict[int, int]:
        reads.append(user_ids)
        return {user_id: logs[user_id] for user_id in user_ids}

    waker.read_positions_with(read)
    results = {user_id: wait_in_thread(waker, user_id, 10, position=5) for user_id in logs}
    settle(lambda: waker.waiting() == 100)
    waker.poll_once()  # nothing moved: nobody wakes
    assert reads == [list(range(1, 101))] and waker.waiting() == 100
    logs[42] = 6
    waker.poll_once()
    settle(lambda: results[42])
    assert results[42] == [True] and waker.waiting() == 99
    assert len(reads) == 2 and waker.polls == 2  # one read per poll, however many wait
    waker.wake_all()


def test_the_poller_runs_while_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    waker = Waker(DEAD_REDIS, poll_seconds=0.1)
    logs = {1: 0}
    waker.read_positions_with(lambda ids: {i: logs[i] for i in ids})
    waker.publish([1])  # must not raise
    result = wait_in_thread(waker, 1, 10, position=0)
    logs[1] = 1  # an event committed in another process; its wake-up was lost with Redis
    settle(lambda: result)
    assert result == [True] and waker.redis_healthy is False


@pytest.mark.skipif(not redis_available(), reason="needs a Redis server (CI always has one)")
def test_redis_carries_wake_ups_between_processes() -> None:
    listener = Waker(REDIS_URL, poll_seconds=30, prefix="parley-test-a")
    sender = Waker(REDIS_URL, poll_seconds=30, prefix="parley-test-a")
    stranger = Waker(REDIS_URL, poll_seconds=30, prefix="parley-test-b")
    listener.attach(41)  # starts the subscriber
    settle(lambda: listener.redis_healthy)
    assert listener.redis_healthy
    result = wait_in_thread(listener, 42, 10)
    stranger.publish([42])  # another deployment on the same Redis: not this one's reader
    time.sleep(0.3)
    assert result == []
    sender.publish([42])
    settle(lambda: result)
    assert result == [True]


@pytest.mark.skipif(not redis_available(), reason="needs a Redis server (CI always has one)")
def test_a_process_skips_the_echo_of_its_own_wake_ups() -> None:
    """It woke its readers when it published: the echo would make every one of them read again."""
    prefix = f"parley-test-{time.monotonic_ns()}"
    waker, other = Waker(REDIS_URL, 30, prefix), Waker(REDIS_URL, 30, prefix)
    waker.attach(1), other.attach(1)  # starts the subscribers
    settle(lambda: waker.redis_healthy and other.redis_healthy)
    waker.publish([5])
    settle(lambda: other.version(5) == 1)
    time.sleep(0.3)  # the echo has come back by now
    assert waker.version(5) == 1 and other.version(5) == 1  # once each
    redis.Redis.from_url(REDIS_URL).publish(f"{prefix}:events", "[5]")  # an older process's
    settle(lambda: waker.version(5) == 2 and other.version(5) == 2)
    assert waker.version(5) == 2 and other.version(5) == 2


def test_one_waker_per_process_and_settings() -> None:
    assert get_waker("", 1.0) is get_waker("", 1.0)
    assert get_waker("", 1.0) is not get_waker("", 2.0)
    assert get_waker("", 1.0, "a") is not get_waker("", 1.0, "b")


def test_ephemeral_events_reach_the_users_streams_only() -> None:
    waker = Waker("", poll_seconds=60)
    stream, other, poll = waker.attach(5, ephemeral=True), waker.attach(6, True), waker.attach(5)
    waker.publish_ephemeral([5], "typing", {"user_id": 9})
    assert stream.take_ephemeral() == [("typing", {"user_id": 9})] and stream.event.is_set()
    assert other.take_ephemeral() == [] and poll.inbox is None  # long-polls get none
    for n in range(100):  # a stream that does not read keeps the newest ones only
        waker.publish_ephemeral([5], "typing", {"n": n})
    kept = stream.take_ephemeral()
    assert len(kept) == 64 and kept[-1] == ("typing", {"n": 99})
    waker.detach(stream)
    waker.publish_ephemeral([5], "typing", {})  # nobody listening: nothing kept anywhere
    assert stream.take_ephemeral() == [] and sorted(waker.connected_users()) == [5, 6]


def test_a_pending_ephemeral_event_or_hang_up_ends_a_wait_at_once() -> None:
    waker = Waker("", poll_seconds=60)
    listener = waker.attach(2, ephemeral=True)
    waker.deliver_local([2], "presence", {"status": "online"})
    assert waker.wait(listener, waker.version(2), 10, position=0) is True
    listener.take_ephemeral()
    listener.hang_up()
    assert waker.wait(listener, waker.version(2), 10, position=0) is True


@pytest.mark.skipif(not redis_available(), reason="needs a Redis server (CI always has one)")
def test_redis_carries_ephemeral_events_to_every_process() -> None:
    here = Waker(REDIS_URL, poll_seconds=30, prefix="parley-test-eph")
    there = Waker(REDIS_URL, poll_seconds=30, prefix="parley-test-eph")
    mine, theirs = here.attach(1, ephemeral=True), there.attach(1, ephemeral=True)
    settle(lambda: here.redis_healthy and there.redis_healthy)
    here.publish_ephemeral([1, 1], "typing", {"conversation_id": 3})
    settle(lambda: mine.inbox and theirs.inbox)
    assert mine.take_ephemeral() == theirs.take_ephemeral() == [("typing", {"conversation_id": 3})]


def test_without_redis_up_ephemeral_events_stay_in_the_process() -> None:
    waker = Waker(DEAD_REDIS, poll_seconds=30)
    stream = waker.attach(4, ephemeral=True)
    waker.publish_ephemeral([4], "typing", {})
    assert stream.take_ephemeral() == [("typing", {})]
