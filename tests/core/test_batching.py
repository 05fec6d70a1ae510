"""Look-ups made at once by many callers are answered with few calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

import pytest

from app.core.batching import Batcher, batcher_in


class GatedFetch:
    """A ``fetch_many`` whose first call waits until released (the database being slow)."""

    def __init__(self, answer: Callable[[int], object] = lambda key: key * 10) -> None:
        self.answer = answer
        self.batches: list[list[int]] = []
        self.first_call = threading.Event()
        self.release = threading.Event()

    def __call__(self, keys: list[int]) -> Mapping[int, object]:
        self.batches.append(keys)
        if len(self.batches) == 1:
            self.first_call.set()
            assert self.release.wait(10)
        return {key: self.answer(key) for key in keys}


def ask_all(batcher: Batcher[int, object], keys: list[int]) -> tuple[dict[int, object], list]:
    """Ask for each key on a thread of its own; return the answers and the errors."""
    answers: dict[int, object] = {}
    errors: list[BaseException] = []

    def ask(key: int) -> None:
        try:
            answers[key] = batcher.get(key)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return answers, errors


def queued(batcher: Batcher[int, object], count: int) -> None:
    """Wait until ``count`` keys are queued behind the call in progress."""
    deadline = time.monotonic() + 5
    while len(batcher._queued) < count:  # the test looks inside: how many wait
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_callers_that_ask_while_a_call_runs_share_the_next_call() -> None:
    fetch = GatedFetch()
    batcher = Batcher(fetch)
    first: dict[int, object] = {}
    leader = threading.Thread(target=lambda: first.update({1: batcher.get(1)}))
    leader.start()
    assert fetch.first_call.wait(5)
    results: list[tuple[dict[int, object], list]] = []
    others = threading.Thread(target=lambda: results.append(ask_all(batcher, [*range(2, 52)])))
    others.start()
    queued(batcher, 50)
    fetch.release.set()
    leader.join(10)
    others.join(10)
    [(answers, errors)] = results
    assert not errors
    assert first == {1: 10}
    assert answers == {key: key * 10 for key in range(2, 52)}
    assert fetch.batches[0] == [1]
    assert sorted(fetch.batches[1]) == [*range(2, 52)]  # fifty callers, one call
    assert batcher.calls == 2


def test_callers_of_one_key_share_one_answer() -> None:
    fetch = GatedFetch()
    batcher = Batcher(fetch)
    leader = threading.Thread(target=batcher.get, args=(0,))
    leader.start()
    assert fetch.first_call.wait(5)
    seen: list[object] = []
    same = [threading.Thread(target=lambda: seen.append(batcher.get(7))) for _ in range(5)]
    for thread in same:
        thread.start()
    queued(batcher, 1)
    time.sleep(0.05)  # all five are waiting on the one queued key
    fetch.release.set()
    for thread in [leader, *same]:
        thread.join(10)
    assert seen == [70] * 5
    assert fetch.batches == [[0], [7]]


def test_a_call_takes_at_most_max_keys() -> None:
    fetch = GatedFetch()
    batcher = Batcher(fetch, max_keys=10)
    leader = threading.Thread(target=batcher.get, args=(0,))
    leader.start()
    assert fetch.first_call.wait(5)
    done = threading.Thread(target=lambda: ask_all(batcher, [*range(1, 26)]))
    done.start()
    queued(batcher, 25)
    fetch.release.set()
    leader.join(10)
    done.join(10)
    assert [len(batch) for batch in fetch.batches] == [1, 10, 10, 5]


def test_an_error_reaches_every_caller_of_its_call_and_the_next_call_is_made() -> None:
    def fetch(keys: list[int]) -> Mapping[int, object]:
        if 13 in keys:
            raise ConnectionError("database down")
        return {key: key for key in keys}

    batcher = Batcher(fetch)
    with pytest.raises(ConnectionError):
        batcher.get(13)
    assert batcher.get(4) == 4  # nobody is left answering


def test_a_key_the_fetch_did_not_answer_is_a_key_error() -> None:
    batcher: Batcher[int, object] = Batcher(lambda keys: {})
    with pytest.raises(KeyError):
        batcher.get(1)


def test_a_caller_stopped_while_answering_leaves_no_one_waiting_forever() -> None:
    class Stop(BaseException):
        """As a greenlet killed while it waits on the database."""

    fetch = GatedFetch()
    calls = 0

    def stopped_first(keys: list[int]) -> Mapping[int, object]:
        nonlocal calls
        calls += 1
        if calls == 1:
            fetch(keys)  # waits for the others to queue
            raise Stop()
        return {key: key for key in keys}

    batcher = Batcher(stopped_first)
    stopped: list[BaseException] = []

    def lead() -> None:
        try:
            batcher.get(1)
        except Stop as error:
            stopped.append(error)

    leader = threading.Thread(target=lead)
    leader.start()
    assert fetch.first_call.wait(5)
    result: list[object] = []
    other = threading.Thread(target=lambda: result.append(batcher.get(2)))
    other.start()
    queued(batcher, 1)
    fetch.release.set()
    leader.join(10)
    other.join(10)
    assert len(stopped) == 1
    assert result == [2]  # the queued caller took over


def test_each_registry_has_its_own_batcher() -> None:
    first: dict[str, object] = {}
    second: dict[str, object] = {}
    a = batcher_in(first, "reads", lambda keys: {k: "a" for k in keys})
    assert batcher_in(first, "reads", lambda keys: {k: "other" for k in keys}) is a
    b = batcher_in(second, "reads", lambda keys: {k: "b" for k in keys})
    assert (a.get(1), b.get(1)) == ("a", "b")
