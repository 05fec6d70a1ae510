"""Typing and presence through gunicorn: members' open streams only, never logged."""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from tests.e2e.conftest import start_gunicorn
from tests.e2e.sse import sse_blocks
from tests.e2e.test_gunicorn_auth import bearer, register_and_login

pytestmark = pytest.mark.e2e

PRESENCE_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def base(
    database_url: str, _schema: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """With REDIS_URL (CI), two workers: ephemeral events cross processes through Redis.
    Without it, one: they then reach the streams of their own process only."""
    process, url = start_gunicorn(
        database_url,
        tmp_path_factory.mktemp("ephemeral") / "server.log",
        workers=2 if os.environ.get("REDIS_URL") else 1,
        REDIS_PREFIX=f"parley-ephemeral-{uuid.uuid4().hex}",
        PRESENCE_TIMEOUT_SECONDS=str(PRESENCE_TIMEOUT),
        EVENTS_KEEPALIVE_SECONDS="0.5",  # closed streams are noticed at the next write
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
        try:
            for block in sse_blocks(self.response.iter_lines(decode_unicode=True)):
                if "event" in block:
                    self.blocks.put(block)
        except Exception:  # noqa: BLE001 - closed by the test from another thread
            return

    def next(self, seconds: float, event: str | None = None) -> dict[str, str] | None:
        """The next SSE block within ``seconds`` (of type ``event`` when given), else None."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                block = self.blocks.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                return None
            if event is None or block["event"] == event:
                return block

    def presence(self, seconds: float) -> list[dict[str, Any]]:
        """The data of every ``presence`` event that arrives within ``seconds``."""
        found = []
        deadline = time.monotonic() + seconds
        while (block := self.next(max(deadline - time.monotonic(), 0))) is not None:
            if block["event"] == "presence":
                assert "id" not in block  # ephemeral: no cursor
                found.append(json.loads(block["data"]))
        return found

    def close(self) -> None:
        self.response.close()


def three_users(base: str, tag: str) -> list[tuple[str, int]]:
    """Register alice, bob and carol: each one's access token and id."""
    users = []
    for name in ("alice", "bob", "carol"):
        token = register_and_login(base, f"{name}_{tag}")["access_token"]
        me = requests.get(f"{base}/api/v1/users/me", headers=bearer(token), timeout=10)
        users.append((token, me.json()["id"]))
    return users


def direct(base: str, token: str, other_id: int) -> int:
    """Open a direct conversation with ``other_id``; its id."""
    created = requests.post(
        f"{base}/api/v1/conversations",
        json={"kind": "direct", "member_ids": [other_id]},
        headers=bearer(token),
        timeout=10,
    )
    return int(created.json()["id"])


def test_typing_reaches_the_other_members_open_streams_only(app: Flask, base: str) -> None:
    api = f"{base}/api/v1"
    (alice, alice_id), (bob, bob_id), (carol, _) = three_users(base, "typing")
    chat = direct(base, alice, bob_id)
    start = requests.get(f"{api}/events", headers=bearer(bob), timeout=10).json()["next"]
    bobs, carols, alices = Stream(base, bob), Stream(base, carol), Stream(base, alice)
    try:
        url = f"{api}/conversations/{chat}/typing"
        assert requests.post(url, headers=bearer(alice), timeout=10).status_code == 204
        block = bobs.next(5, "typing")
        assert block is not None and block["event"] == "typing"
        assert "id" not in block  # ephemeral: no cursor, nothing to resume
        assert json.loads(block["data"]) == {
            "conversation_id": chat,
            "user_id": alice_id,
            "expires_in": 6,
        }
        # Within 2 s a repeat is accepted and not broadcast.
        assert requests.post(url, headers=bearer(alice), timeout=10).status_code == 204
        assert bobs.next(1, "typing") is None
        # Not to a non-member, nor back to the typist.
        assert carols.next(0.5, "typing") is None and alices.next(0.1, "typing") is None
        refused = requests.post(url, headers=bearer(carol), timeout=10)
        assert refused.status_code == 404
        assert refused.headers["Content-Type"] == "application/problem+json"
        # After the interval it is broadcast again.
        bobs.next(1.5, "typing")
        assert requests.post(url, headers=bearer(alice), timeout=10).status_code == 204
        again = bobs.next(5, "typing")
        assert again is not None and again["event"] == "typing"
    finally:
        for stream in (bobs, carols, alices):
            stream.response.close()
    # The durable log never holds it.
    logged = requests.get(
        f"{api}/events", params={"since": start}, headers=bearer(bob), timeout=10
    ).json()
    assert all(e["type"] != "typing" for e in logged["events"])


def test_presence_reaches_members_once_and_respects_show_presence(base: str) -> None:
    api = f"{base}/api/v1"
    (alice, _), (bob, bob_id), (carol, _) = three_users(base, "presence")
    chat = direct(base, alice, bob_id)
    start = requests.get(f"{api}/events", headers=bearer(alice), timeout=10).json()["next"]
    alices, carols = Stream(base, alice), Stream(base, carol)
    bobs: list[Stream] = []
    try:
        # Two connections (on either worker): bob comes online once, for alice only.
        bobs = [Stream(base, bob), Stream(base, bob)]
        [online] = alices.presence(2)
        assert online["user_id"] == bob_id and online["status"] == "online"
        assert carols.presence(0.2) == []
        state = requests.get(
            f"{api}/conversations/{chat}/presence", headers=bearer(alice), timeout=10
        ).json()["items"]
        assert {i["user_id"]: i["status"] for i in state}[bob_id] == "online"

        def show(value: bool) -> None:
            changed = requests.patch(
                f"{api}/users/me", json={"show_presence": value}, headers=bearer(bob), timeout=10
            )
            assert changed.status_code == 200 and changed.json()["show_presence"] is value

        show(False)
        assert alices.presence(1) == [
            {"user_id": bob_id, "status": "offline", "last_seen_at": None}
        ]
        show(True)
        [back] = alices.presence(1)
        assert back["status"] == "online" and back["last_seen_at"] is not None
        # Both connections close: one offline, a timeout later, from one of the workers.
        for stream in bobs:
            stream.close()
        gone = alices.presence(PRESENCE_TIMEOUT + 3)
        assert [(g["user_id"], g["status"]) for g in gone] == [(bob_id, "offline")]
        assert carols.presence(0.1) == []
    finally:
        for stream in (alices, carols, *bobs):
            stream.close()
    logged = requests.get(
        f"{api}/events", params={"since": start}, headers=bearer(alice), timeout=10
    ).json()
    assert all(e["type"] != "presence" for e in logged["events"])
