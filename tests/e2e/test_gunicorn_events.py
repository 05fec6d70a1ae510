"""Events across two gunicorn instances sharing one database and one Redis."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
import sqlalchemy as sa
from flask import Flask

from app.database import db
from app.models import UserEvent
from tests.e2e.conftest import start_gunicorn
from tests.e2e.sse import sse_blocks
from tests.e2e.test_gunicorn_auth import bearer, register_and_login

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis at {REDIS_URL} (CI always has one)")
    return REDIS_URL


@pytest.fixture(scope="module")
def instances(
    database_url: str, _schema: None, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Two separate gunicorn instances; their database poll is slow, so only Redis wakes fast."""
    logs = tmp_path_factory.mktemp("instances")
    started = [
        start_gunicorn(
            database_url,
            logs / f"{name}.log",
            workers=2,
            REDIS_URL=redis_url,
            EVENTS_POLL_SECONDS="5",
            EVENTS_KEEPALIVE_SECONDS="1",
        )
        for name in ("a", "b")
    ]
    yield [url for _, url in started]
    for process, _ in started:
        process.terminate()
        process.wait(timeout=15)


def me(base: str, token: str) -> int:
    return int(
        requests.get(f"{base}/api/v1/users/me", headers=bearer(token), timeout=10).json()["id"]
    )


def cursor_of(base: str, token: str) -> str:
    return str(
        requests.get(f"{base}/api/v1/events", headers=bearer(token), timeout=10).json()["next"]
    )


def test_a_message_sent_through_a_wakes_a_long_poller_on_b(
    app: Flask, instances: list[str]
) -> None:
    a, b = instances
    alice = register_and_login(a, "alice_x")["access_token"]
    bob = register_and_login(b, "bob_x")["access_token"]
    conversation = requests.post(
        f"{a}/api/v1/conversations",
        json={"kind": "direct", "member_ids": [me(b, bob)]},
        headers=bearer(alice),
        timeout=10,
    ).json()
    cursor = cursor_of(b, bob)
    result: dict[str, Any] = {}

    def long_poll() -> None:
        response = requests.get(
            f"{b}/api/v1/events",
            params={"since": cursor, "timeout": 20},
            headers=bearer(bob),
            timeout=30,
        )
        result["at"] = time.monotonic()
        result["body"] = response.json()

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(1.0)  # the poller is waiting on b
    sent = requests.post(
        f"{a}/api/v1/conversations/{conversation['id']}/messages",
        json={"body": "across"},
        headers=bearer(alice),
        timeout=10,
    )
    acked = time.monotonic()
    assert sent.status_code == 201
    poller.join(30)
    latency = result["at"] - acked
    assert [e["data"]["body"] for e in result["body"]["events"]] == ["across"]
    assert latency < 2.0, f"woken after {latency:.2f}s: Redis did not wake instance b"


def read_sse(
    base: str, token: str, cursor: str, limit: int, seconds: float
) -> tuple[list[dict[str, Any]], str]:
    """Read up to ``limit`` events from the stream, then disconnect."""
    import json

    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    with requests.get(
        f"{base}/api/v1/events/stream",
        headers={**bearer(token), "Last-Event-ID": cursor},
        stream=True,
        timeout=10,
    ) as response:
        assert response.status_code == 200
        for block in sse_blocks(response.iter_lines(decode_unicode=True)):
            if "id" in block:  # a logged event (presence and typing have no id)
                event = json.loads(block["data"])
                assert event["cursor"] == block["id"] and event["type"] == block["event"]
                events.append(event)
                cursor = block["id"]
            if len(events) >= limit or time.monotonic() > deadline:
                break
    return events, cursor


def test_reconnecting_clients_get_every_event_once_in_order(
    app: Flask, instances: list[str]
) -> None:
    rng = random.Random(7)
    names = ["r0", "r1", "r2", "r3"]
    tokens = {
        n: register_and_login(rng.choice(instances), f"{n}_ev")["access_token"] for n in names
    }
    ids = {n: me(instances[0], t) for n, t in tokens.items()}
    starts = {n: cursor_of(instances[1], t) for n, t in tokens.items()}
    collected: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    stop = threading.Event()

    def reader(name: str) -> None:
        local = random.Random(name)
        cursor = starts[name]
        while not stop.is_set():
            base = local.choice(instances)
            if local.random() < 0.5:
                body = requests.get(
                    f"{base}/api/v1/events",
                    params={"since": cursor, "timeout": local.choice([0, 0.5, 2])},
                    headers=bearer(tokens[name]),
                    timeout=30,
                ).json()
                collected[name] += body["events"]
                cursor = body["next"]
            else:
                events, cursor = read_sse(base, tokens[name], cursor, local.randint(1, 8), 2.5)
                collected[name] += events
        # Final drain after the writers stopped.
        while True:
            body = requests.get(
                f"{instances[0]}/api/v1/events",
                params={"since": cursor},
                headers=bearer(tokens[name]),
                timeout=10,
            ).json()
            if not body["events"]:
                break
            collected[name] += body["events"]
            cursor = body["next"]

    readers = [threading.Thread(target=reader, args=(n,)) for n in names]
    for thread in readers:
        thread.start()
    try:
        groups = []
        for _ in range(3):
            owner = rng.choice(names)
            others = [ids[n] for n in names if n != owner and rng.random() < 0.6]
            groups.append(
                requests.post(
                    f"{rng.choice(instances)}/api/v1/conversations",
                    json={"kind": "group", "title": "ops", "member_ids": others},
                    headers=bearer(tokens[owner]),
                    timeout=10,
                ).json()["id"]
            )
        for _ in range(240):
            actor, base = rng.choice(names), rng.choice(instances)
            cid = rng.choice(groups)
            path = f"{base}/api/v1/conversations/{cid}"
            roll = rng.random()
            if roll < 0.6:
                response = requests.post(
                    f"{path}/messages",
                    json={"body": f"op{roll:.5f}"},
                    headers=bearer(tokens[actor]),
                    timeout=10,
                )
            elif roll < 0.75:
                response = requests.post(
                    f"{path}/read",
                    json={"seq": rng.randint(0, 50)},
                    headers=bearer(tokens[actor]),
                    timeout=10,
                )
            elif roll < 0.85:
                response = requests.patch(
                    f"{path}/messages/{rng.randint(1, 20)}",
                    json={"body": "edited"},
                    headers=bearer(tokens[actor]),
                    timeout=10,
                )
            elif roll < 0.92:
                response = requests.delete(
                    f"{path}/messages/{rng.randint(1, 20)}",
                    headers=bearer(tokens[actor]),
                    timeout=10,
                )
            else:
                response = requests.post(
                    f"{path}/members",
                    json={"user_ids": [ids[rng.choice(names)]]},
                    headers=bearer(tokens[actor]),
                    timeout=10,
                )
            assert response.status_code < 500, response.text
    finally:
        time.sleep(1)
        stop.set()
        for thread in readers:
            thread.join(60)
    with app.app_context():
        for name in names:
            logged = list(
                db.session.scalars(
                    sa.select(UserEvent.seq)
                    .where(UserEvent.user_id == ids[name], UserEvent.seq > int(starts[name]))
                    .order_by(UserEvent.seq)
                )
            )
            got = [int(e["cursor"]) for e in collected[name]]
            assert got == logged, name  # every event, once, in commit order
            assert len(got) > 0


def test_redis_down_degrades_to_polling(
    database_url: str, _schema: None, app: Flask, tmp_path: Any
) -> None:
    process, base = start_gunicorn(
        database_url,
        tmp_path / "noredis.log",
        workers=2,
        REDIS_URL="redis://127.0.0.1:1/0",
        EVENTS_POLL_SECONDS="1",
    )
    try:
        alice = register_and_login(base, "alice_nr")["access_token"]
        bob = register_and_login(base, "bob_nr")["access_token"]
        conversation = requests.post(
            f"{base}/api/v1/conversations",
            json={"kind": "direct", "member_ids": [me(base, bob)]},
            headers=bearer(alice),
            timeout=10,
        ).json()
        cursor = cursor_of(base, bob)
        result: dict[str, Any] = {}

        def long_poll() -> None:
            result["response"] = requests.get(
                f"{base}/api/v1/events",
                params={"since": cursor, "timeout": 15},
                headers=bearer(bob),
                timeout=30,
            )

        poller = threading.Thread(target=long_poll)
        poller.start()
        time.sleep(0.5)
        sent = requests.post(
            f"{base}/api/v1/conversations/{conversation['id']}/messages",
            json={"body": "no redis"},
            headers=bearer(alice),
            timeout=10,
        )
        assert sent.status_code == 201  # publishing failed quietly; the send stands
        poller.join(30)
        response = result["response"]
        assert response.status_code == 200
        assert [e["data"]["body"] for e in response.json()["events"]] == ["no redis"]
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_one_user_over_the_connection_cap_is_refused_across_instances(
    app: Flask, instances: list[str]
) -> None:
    """The cap holds across processes and machines (through Redis); others are unaffected."""
    a, b = instances
    greedy = register_and_login(a, "greedy_x")["access_token"]
    other = register_and_login(a, "other_x")["access_token"]
    open_streams: list[requests.Response] = []
    try:
        for i in range(10):  # the default cap, spread over both instances
            base = a if i % 2 else b
            stream = requests.get(
                f"{base}/api/v1/events/stream", headers=bearer(greedy), stream=True, timeout=10
            )
            assert stream.status_code == 200, stream.text
            open_streams.append(stream)
        for base in (a, b):
            refused = requests.get(
                f"{base}/api/v1/events/stream", headers=bearer(greedy), stream=True, timeout=10
            )
            assert refused.status_code == 429, refused.text
            assert refused.json()["code"] == "too_many_connections"
            assert int(refused.headers["Retry-After"]) > 0
        others = requests.get(
            f"{a}/api/v1/events/stream", headers=bearer(other), stream=True, timeout=10
        )
        assert others.status_code == 200
        others.close()
        assert requests.get(f"{a}/healthz", timeout=5).status_code == 200
    finally:
        for stream in open_streams:
            stream.close()
    # Closed streams give their slots back (the server notices at its next write).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        retry = requests.get(
            f"{a}/api/v1/events/stream", headers=bearer(greedy), stream=True, timeout=10
        )
        retry.close()
        if retry.status_code == 200:
            break
        time.sleep(0.5)
    assert retry.status_code == 200
