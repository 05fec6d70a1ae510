"""Typing indicators through gunicorn: members' open streams only, throttled, never logged."""

from __future__ import annotations

import json
import os
import queue
import threading
import uuid
from collections.abc import Iterator

import pytest
import requests
from flask import Flask

from tests.e2e.conftest import start_gunicorn
from tests.e2e.test_gunicorn_auth import bearer, register_and_login

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def base(
    database_url: str, _schema: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """With REDIS_URL (CI), two workers: typing crosses processes through Redis. Without it,
    one: ephemeral events then reach the streams of their own process only."""
    process, url = start_gunicorn(
        database_url,
        tmp_path_factory.mktemp("typing") / "server.log",
        workers=2 if os.environ.get("REDIS_URL") else 1,
        REDIS_PREFIX=f"parley-typing-{uuid.uuid4().hex}",
    )
    yield url
    process.terminate()
    process.wait(timeout=15)


class Stream:
    """An open event stream whose SSE blocks arrive on a queue."""

    def __init__(self, base: str, token: str) -> None:
        self.blocks: queue.Queue[dict[str, str]] = queue.Queue()
        self.response = requests.get(
            f"{base}/api/v1/events/stream", headers=bearer(token), stream=True, timeout=30
        )
        assert self.response.status_code == 200
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        block: dict[str, str] = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line:
                    if not line.startswith(":") and ": " in line:
                        key, value = line.split(": ", 1)
                        block[key] = value
                    continue
                if "event" in block:
                    self.blocks.put(block)
                block = {}
        except Exception:  # noqa: BLE001 - closed by the test from another thread
            return

    def next(self, seconds: float) -> dict[str, str] | None:
        try:
            return self.blocks.get(timeout=seconds)
        except queue.Empty:
            return None


def test_typing_reaches_the_other_members_open_streams_only(app: Flask, base: str) -> None:
    api = f"{base}/api/v1"
    alice, bob, carol = (
        register_and_login(base, f"{name}_typing")["access_token"]
        for name in ("alice", "bob", "carol")
    )
    bob_id = requests.get(f"{api}/users/me", headers=bearer(bob), timeout=10).json()["id"]
    alice_id = requests.get(f"{api}/users/me", headers=bearer(alice), timeout=10).json()["id"]
    chat = requests.post(
        f"{api}/conversations",
        json={"kind": "direct", "member_ids": [bob_id]},
        headers=bearer(alice),
        timeout=10,
    ).json()["id"]
    start = requests.get(f"{api}/events", headers=bearer(bob), timeout=10).json()["next"]
    bobs, carols, alices = Stream(base, bob), Stream(base, carol), Stream(base, alice)
    try:
        url = f"{api}/conversations/{chat}/typing"
        assert requests.post(url, headers=bearer(alice), timeout=10).status_code == 204
        block = bobs.next(5)
        assert block is not None and block["event"] == "typing"
        assert "id" not in block  # ephemeral: no cursor, nothing to resume
        assert json.loads(block["data"]) == {
            "conversation_id": chat,
            "user_id": alice_id,
            "expires_in": 6,
        }
        # Within 2 s a repeat is accepted and not broadcast.
        assert requests.post(url, headers=bearer(alice), timeout=10).status_code == 204
        assert bobs.next(1) is None
        # Not to a non-member, nor back to the typist.
        assert carols.next(0.5) is None and alices.next(0.1) is None
        refused = requests.post(url, headers=bearer(carol), timeout=10)
        assert refused.status_code == 404
        assert refused.headers["Content-Type"] == "application/problem+json"
        # After the interval it is broadcast again.
        bobs.next(1.5)
        assert requests.post(url, headers=bearer(alice), timeout=10).status_code == 204
        again = bobs.next(5)
        assert again is not None and again["event"] == "typing"
    finally:
        for stream in (bobs, carols, alices):
            stream.response.close()
    # The durable log never holds it.
    logged = requests.get(
        f"{api}/events", params={"since": start}, headers=bearer(bob), timeout=10
    ).json()
    assert all(e["type"] != "typing" for e in logged["events"])
