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


def test_local_notify_wakes_a_waiter() -> None:
    waker = Waker("", poll_seconds=5)
    seen = waker.version(7)
    threading.Timer(0.1, waker.publish, args=([7, 7, 8],)).start()
    started = time.monotonic()
    assert waker.wait(7, seen, 3) is True
    assert time.monotonic() - started < 2
    assert waker.version(7) == seen + 1


def test_wait_without_redis_returns_at_the_poll_interval() -> None:
    waker = Waker("", poll_seconds=0.2)
    started = time.monotonic()
    assert waker.wait(1, waker.version(1), 5) is False
    assert 0.15 < time.monotonic() - started < 2
    waker.publish([])  # nothing to do


def test_dead_redis_degrades_to_polling(caplog: pytest.LogCaptureFixture) -> None:
    waker = Waker(DEAD_REDIS, poll_seconds=0.2)
    waker.publish([1])  # must not raise
    started = time.monotonic()
    assert waker.wait(1, waker.version(1), 5) is False  # subscriber down: poll interval
    assert time.monotonic() - started < 2
    assert waker.redis_healthy is False


@pytest.mark.skipif(not redis_available(), reason="needs a Redis server (CI always has one)")
def test_redis_carries_wake_ups_between_processes() -> None:
    listener = Waker(REDIS_URL, poll_seconds=30)
    sender = Waker(REDIS_URL, poll_seconds=30)
    seen = listener.version(42)
    listener.wait(42, seen, 0.01)  # starts the subscriber
    deadline = time.monotonic() + 5
    while not listener.redis_healthy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.redis_healthy
    seen = listener.version(42)
    threading.Timer(0.2, sender.publish, args=([42],)).start()
    started = time.monotonic()
    assert listener.wait(42, seen, 10) is True
    assert time.monotonic() - started < 3


def test_one_waker_per_process_and_settings() -> None:
    assert get_waker("", 1.0) is get_waker("", 1.0)
    assert get_waker("", 1.0) is not get_waker("", 2.0)
