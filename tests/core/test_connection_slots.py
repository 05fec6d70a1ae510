"""Per-user event connection slots: shared through Redis across processes, local without it."""

from __future__ import annotations

import gc
import time
import uuid

import pytest

from app.core import connection_slots
from app.core.connection_slots import ConnectionSlots, TooManyConnectionsError
from tests.core.test_wakeup import DEAD_REDIS, REDIS_URL, redis_available

needs_redis = pytest.mark.skipif(not redis_available(), reason="needs a Redis server")


def test_without_redis_each_process_counts_its_own() -> None:
    slots = ConnectionSlots("", "parley-test")
    held = [slots.take(1, limit=2), slots.take(1, limit=2)]
    with pytest.raises(TooManyConnectionsError) as refused:
        slots.take(1, limit=2)
    assert refused.value.headers["Retry-After"] == "5"
    slots.take(2, limit=2).release()  # another user
    held.pop().release()
    slots.take(1, limit=2)


def test_a_dead_redis_falls_back_to_counting_locally() -> None:
    slots = ConnectionSlots(DEAD_REDIS, "parley-test")
    slot = slots.take(1, limit=1)
    assert slot.shared is False
    with pytest.raises(TooManyConnectionsError):
        slots.take(1, limit=1)
    slot.release()


@needs_redis
def test_redis_shares_the_count_between_processes() -> None:
    prefix = f"parley-test-{uuid.uuid4().hex}"
    first, second = ConnectionSlots(REDIS_URL, prefix), ConnectionSlots(REDIS_URL, prefix)
    held = first.take(7, limit=2)
    second.take(7, limit=2)
    with pytest.raises(TooManyConnectionsError):
        first.take(7, limit=2)
    other_deployment = ConnectionSlots(REDIS_URL, f"{prefix}-other")
    other_deployment.take(7, limit=2).release()  # its own namespace
    held.release()
    second.take(7, limit=2)


@needs_redis
def test_held_slots_are_renewed_and_a_dead_process_s_lapse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process killed mid-stream never releases its slots: they lapse, the held ones do not."""
    import redis

    monkeypatch.setattr(connection_slots, "SLOT_SECONDS", 0.6)  # renewed every 0.2 s
    prefix = f"parley-test-{uuid.uuid4().hex}"
    dead_process = redis.Redis.from_url(REDIS_URL)
    dead_process.zadd(f"{prefix}:event-connections:9", {"left-behind": time.time() + 0.6})
    slots = ConnectionSlots(REDIS_URL, prefix)
    kept = slots.take(9, limit=2)
    with pytest.raises(TooManyConnectionsError):
        slots.take(9, limit=2)  # the dead process's slot still counts
    time.sleep(1.0)  # past both slots' first expiry: only the held one was renewed
    extra = slots.take(9, limit=2)
    with pytest.raises(TooManyConnectionsError):
        slots.take(9, limit=2)
    kept.release()
    extra.release()
    assert dead_process.zcard(f"{prefix}:event-connections:9") == 0
    slots.take(9, limit=2)  # dropped, never released (a bug): not renewed for ever either
    gc.collect()
    time.sleep(1.0)
    slots.take(9, limit=1).release()  # it lapsed


@needs_redis
def test_many_held_slots_are_renewed_in_a_few_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    slots = ConnectionSlots(REDIS_URL, f"parley-test-{uuid.uuid4().hex}")
    held = [slots.take(user_id, limit=3) for user_id in range(1200) for _ in range(2)]
    calls = []
    real = slots._redis()
    monkeypatch.setattr(
        real, "pipeline", lambda **kw: calls.append(kw) or type(real).pipeline(real, **kw)
    )
    before = time.time()
    slots.renew_held()
    assert len(calls) == 3  # 1,200 users: a pipeline per 500
    for slot in held[:: len(held) // 7]:
        assert real.zscore(slots._key(slot.user_id), slot.slot_id) > before
    for slot in held:
        slot.release()


def test_renewing_with_redis_gone_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    slots = ConnectionSlots(DEAD_REDIS, "parley-test")
    held = connection_slots.Slot(slots, 1, "x", shared=True)
    slots._held["x"] = held  # taken before Redis went away
    slots.renew_held()
    assert "could not renew connection slots" in caplog.text
