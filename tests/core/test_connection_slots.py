"""Per-user event connection slots: shared through Redis across processes, local without it."""

from __future__ import annotations

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
def test_a_slot_not_renewed_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process killed mid-stream never releases its slots: they lapse instead."""
    monkeypatch.setattr(connection_slots, "SLOT_SECONDS", 0.3)
    slots = ConnectionSlots(REDIS_URL, f"parley-test-{uuid.uuid4().hex}")
    kept = slots.take(9, limit=2)
    slots.take(9, limit=2)  # never renewed nor released
    time.sleep(0.2)
    kept.renewed = 0  # due for renewal
    kept.renew()
    time.sleep(0.2)
    slots.take(9, limit=2)  # the abandoned one lapsed; the renewed one still counts
    with pytest.raises(TooManyConnectionsError):
        slots.take(9, limit=2)
