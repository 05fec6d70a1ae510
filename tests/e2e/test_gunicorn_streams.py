"""Event streams against gunicorn: clients that stop reading, and clients that vanish."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from tests.e2e.conftest import start_gunicorn
from tests.e2e.test_gunicorn_auth import bearer, register_and_login

pytestmark = pytest.mark.e2e


def worker_rss_kb(master_pid: int) -> int:
    """Resident memory of the server's worker processes, in KB."""
    total = 0
    for child in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split():
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def open_raw_stream(base: str, token: str, receive_buffer: int = 0) -> socket.socket:
    """Open ``GET /events/stream`` on a bare socket and read nothing but the response head."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET /api/v1/events/stream HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    return sock


def read_until_closed(sock: socket.socket, seconds: float) -> bytes:
    """Read whatever the server sent until it closes the connection (or time runs out)."""
    received = bytearray()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            return bytes(received)
        received += chunk
    raise AssertionError(f"the server kept the stream open ({len(received)} bytes read)")


def serve(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, **env: str
) -> Iterator[tuple[int, str]]:
    process, base = start_gunicorn(
        database_url,
        tmp_path_factory.mktemp("streams") / "server.log",
        workers=1,
        EVENTS_MAX_CONNECTIONS_PER_USER="1",
        EVENTS_KEEPALIVE_SECONDS="120",  # a dead stream is not found by a keep-alive write
        REDIS_PREFIX=f"parley-streams-{uuid.uuid4().hex}",
        **env,
    )
    yield process.pid, base
    process.terminate()
    process.wait(timeout=15)


@pytest.fixture(scope="module")
def server(
    database_url: str, _schema: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, str]]:
    """The production command with each database's own worker (gevent, or gthread on SQLite)."""
    yield from serve(database_url, tmp_path_factory)


@pytest.fixture(scope="module")
def gevent_server(
    database_url: str, _schema: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, str]]:
    """gevent workers on either database: the worker model that watches idle sockets."""
    yield from serve(database_url, tmp_path_factory, GUNICORN_WORKER_CLASS="gevent")


def direct_pair(base: str, a: str, b: str) -> tuple[str, str, int]:
    sender = register_and_login(base, a)["access_token"]
    reader = register_and_login(base, b)["access_token"]
    reader_id = requests.get(f"{base}/api/v1/users/me", headers=bearer(reader), timeout=10).json()
    conversation = requests.post(
        f"{base}/api/v1/conversations",
        json={"kind": "direct", "member_ids": [reader_id["id"]]},
        headers=bearer(sender),
        timeout=10,
    ).json()
    return sender, reader, int(conversation["id"])


def test_a_client_that_stops_reading_is_closed_and_memory_stays_flat(
    app: Flask, server: tuple[int, str]
) -> None:
    pid, base = server
    sender, reader, conversation_id = direct_pair(base, "slow_sender", "slow_reader")
    sock = open_raw_stream(base, reader, receive_buffer=4096)
    time.sleep(0.5)
    before = worker_rss_kb(pid)
    body = "x" * 9000
    sent = 0
    started = time.monotonic()
    for _ in range(240):  # about 2 MB of events the reader never reads
        response = requests.post(
            f"{base}/api/v1/conversations/{conversation_id}/messages",
            json={"body": body},
            headers=bearer(sender),
            timeout=10,
        )
        assert response.status_code == 201
        sent += 1
    # Other clients were never held up by the stalled stream.
    assert time.monotonic() - started < 60
    assert requests.get(f"{base}/healthz", timeout=2).status_code == 200
    grown = worker_rss_kb(pid) - before
    received = read_until_closed(sock, 30)
    sock.close()
    delivered = received.count(b"\nevent: message.created\n")
    assert 0 < delivered < sent, "the stream should end before it buffers everything"
    assert grown < 16 * 1024, f"the worker grew by {grown} KB while the client did not read"
    # The client resumes where it stopped and misses nothing.
    cursor = received.rsplit(b"\nid: ", 1)[-1].split(b"\n", 1)[0].decode()
    rest: list[int] = []
    while True:
        page = requests.get(
            f"{base}/api/v1/events",
            params={"since": cursor},
            headers=bearer(reader),
            timeout=10,
        ).json()
        if not page["events"]:
            break
        rest += [e["data"]["seq"] for e in page["events"] if e["type"] == "message.created"]
        cursor = page["next"]
    assert rest == list(range(delivered + 1, sent + 1))


def test_a_client_that_hangs_up_frees_its_connection_at_once(
    app: Flask, gevent_server: tuple[int, str]
) -> None:
    """Under gevent an idle stream notices its client leave without writing (gthread notices
    at its next write)."""
    _, base = gevent_server
    token = register_and_login(base, "vanishing")["access_token"]
    sock = open_raw_stream(base, token)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    refused = requests.get(f"{base}/api/v1/events/stream", headers=bearer(token), timeout=10)
    assert refused.status_code == 429  # the cap is one stream here
    sock.close()  # the client vanishes; no write would tell the server for 120 s
    deadline = time.monotonic() + 3
    while True:
        again = requests.get(
            f"{base}/api/v1/events/stream", headers=bearer(token), stream=True, timeout=10
        )
        again.close()
        if again.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert again.status_code == 200, "the closed stream still held the user's connection"
