"""The once-per-interval throttle, in Redis and in the process."""

from __future__ import annotations

import time
import uuid

import pytest

from app.core.throttle import Throttle, get_throttle
from tests.core.test_wakeup import DEAD_REDIS, REDIS_URL, redis_available


@pytest.mark.parametrize(
    "redis_url",
    [
        "",
        DEAD_REDIS,  # Redis down: the process decides alone, and says so in the log
        pytest.param(
            REDIS_URL,
            marks=pytest.mark.skipif(not redis_available(), reason="needs a Redis server"),
        ),
    ],
)
def test_first_call_per_interval_goes_the_others_skip(redis_url: str) -> None:
    throttle = Throttle(redis_url, f"parley-test-{uuid.uuid4().hex}")
    assert throttle.first("typing:1:2", 0.3) is True
    assert throttle.first("typing:1:2", 0.3) is False
    assert throttle.first("typing:1:3", 0.3) is True  # another key has its own interval
    time.sleep(0.35)
    assert throttle.first("typing:1:2", 0.3) is True


@pytest.mark.skipif(not redis_available(), reason="needs a Redis server (CI always has one)")
def test_processes_share_the_interval_through_redis() -> None:
    prefix = f"parley-test-{uuid.uuid4().hex}"
    assert Throttle(REDIS_URL, prefix).first("k", 5) is True
    assert Throttle(REDIS_URL, prefix).first("k", 5) is False


def test_lapsed_keys_are_forgotten() -> None:
    throttle = Throttle("", "p")
    for n in range(10_002):
        throttle.first(f"k{n}", 0.0)
    assert throttle.first("again", 1) is True and len(throttle._until) < 10


def test_one_throttle_per_process_and_settings() -> None:
    assert get_throttle("", "a") is get_throttle("", "a")
    assert get_throttle("", "a") is not get_throttle("", "b")
