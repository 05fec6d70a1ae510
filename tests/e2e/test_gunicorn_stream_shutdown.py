"""SIGTERM with 1,000 open event streams: every stream ends at once, and every client that
reconnects to the next server with its Last-Event-ID gets every acknowledged message, once,
in order."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import threading
import time
from pathlib import Path

import pytest
import requests
from flask import Flask

from tests.e2e.conftest import start_gunicorn
from tests.e2e.test_gunicorn_auth import bearer, register_and_login

pytestmark = pytest.mark.e2e

USERS, STREAMS_PER_USER = 100, 10  # 1,000 streams, each user at the default cap


class Reader:
    """One stream's client: the messages it saw, and where it would resume."""

    def __init__(self, token: str) -> None:
        self.token, self.last_id, self.seqs = token, "", []  # type: ignore[var-annotated]

    async def read(self, host: str, port: int, opened: asyncio.Event | None) -> None:
        """Read the stream until the server ends it (HTTP/1.0: the body ends at close)."""
        reader, writer = await asyncio.open_connection(host, port)
        resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id else ""
        writer.write(
            f"GET /api/v1/events/stream HTTP/1.0\r\nHost: {host}\r\n"
            f"Authorization: Bearer {self.token}\r\n{resume}\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200"), head
        if opened is not None:
            opened.set()
        block: dict[str, str] = {}
        while line := await reader.readline():
            text = line.decode().rstrip("\n")
            if text:
                if not text.startswith(":") and ": " in text:
                    key, value = text.split(": ", 1)
                    block[key] = value
                continue
            if block.get("event") == "message.created":
                self.seqs.append(json.loads(block["data"])["data"]["seq"])
            if "id" in block:
                self.last_id = block["id"]
            block = {}
        writer.close()


def test_sigterm_with_1000_open_streams_loses_nothing(
    app: Flask, database_url: str, _schema: None, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        # Thousands of streams are served by gevent workers, the production setting on
        # PostgreSQL; on SQLite production runs gthread workers, whose streams
        # tests/e2e/test_gunicorn_shutdown.py stops.
        pytest.skip("1,000 streams: the gevent worker of PostgreSQL deployments")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"needs 4,096 file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    env = {
        "GUNICORN_WORKER_CLASS": "gevent",  # the worker model that holds thousands of streams
        "GUNICORN_GRACEFUL_TIMEOUT": "20",
        "REDIS_PREFIX": f"parley-sigterm-{time.time_ns()}",
    }
    server, base = start_gunicorn(database_url, tmp_path / "first.log", workers=2, **env)
    api = f"{base}/api/v1"
    host, port = base.removeprefix("http://").split(":")
    owner = register_and_login(base, "sigterm_owner")["access_token"]
    tokens = [register_and_login(base, f"sigterm_{i}")["access_token"] for i in range(USERS)]
    ids = [
        requests.get(f"{api}/users/me", headers=bearer(t), timeout=10).json()["id"] for t in tokens
    ]
    group = requests.post(
        f"{api}/conversations",
        json={"kind": "group", "title": "sigterm", "member_ids": ids},
        headers=bearer(owner),
        timeout=30,
    ).json()["id"]
    readers = [Reader(t) for t in tokens for _ in range(STREAMS_PER_USER)]
    acknowledged: list[int] = []
    stop = threading.Event()

    def send() -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                response = session.post(
                    f"{api}/conversations/{group}/messages",
                    json={"body": "tick"},
                    headers=bearer(owner),
                    timeout=10,
                )
            except requests.ConnectionError:
                return  # the server is going away: not acknowledged
            if response.status_code == 201:
                acknowledged.append(response.json()["seq"])
            time.sleep(0.05)

    async def first_round() -> float:
        openings = [asyncio.Event() for _ in readers]
        tasks = [
            asyncio.create_task(r.read(host, int(port), o))
            for r, o in zip(readers, openings, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in openings)), 60)
        sender = threading.Thread(target=send)
        sender.start()
        await asyncio.sleep(2)  # messages flow to all 1,000 streams
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        ended = time.monotonic() - started
        stop.set()
        sender.join(15)
        return ended

    try:
        ended_after = asyncio.run(first_round())
        assert server.wait(timeout=25) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=15)
    assert ended_after < 10, f"the streams took {ended_after:.1f}s to end"
    assert acknowledged, "no message was acknowledged before the stop"

    # The clients resume on the next server with their Last-Event-ID.
    server, base = start_gunicorn(database_url, tmp_path / "second.log", workers=2, **env)
    host, port = base.removeprefix("http://").split(":")
    try:
        final = requests.post(
            f"{base}/api/v1/conversations/{group}/messages",
            json={"body": "after the restart"},
            headers=bearer(owner),
            timeout=10,
        ).json()["seq"]

        async def second_round() -> None:
            tasks = [asyncio.create_task(r.read(host, int(port), None)) for r in readers]
            deadline = time.monotonic() + 60
            while any(not r.seqs or r.seqs[-1] < final for r in readers):
                assert time.monotonic() < deadline, "some streams never caught up"
                await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(second_round())
    finally:
        server.terminate()
        server.wait(timeout=25)
    for reader in readers:
        # Every message once, in order, across the stop: nothing lost, nothing twice.
        assert reader.seqs == list(range(1, final + 1))
    assert set(acknowledged) <= set(range(1, final))
