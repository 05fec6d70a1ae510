"""Keep-alive clients are spread over gunicorn's workers, not piled onto one."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask

from tests.e2e.conftest import start_gunicorn

pytestmark = pytest.mark.e2e

CLIENTS = 32


def served_by(log_path: Path) -> Counter[int]:
    """How many ``/healthz`` requests each worker pid answered, from the access lines."""
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    return Counter(e["pid"] for e in lines if e.get("path") == "/healthz")


def test_keep_alive_connections_spread_over_the_workers(
    app: Flask, database_url: str, _schema: None, tmp_path: Path
) -> None:
    # With one listening socket shared by the workers, whichever worker wakes first accepts a
    # burst of new connections, and keep-alive keeps them there: one worker could serve all
    # 32 clients while the other idles. Each worker listening on its own SO_REUSEPORT socket
    # lets the kernel spread them.
    log_path = tmp_path / "server.log"
    server, base = start_gunicorn(database_url, log_path, workers=2, LOG_LEVEL="INFO")
    address = urlsplit(base)
    clients = [
        http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
        for _ in range(CLIENTS)
    ]
    try:
        for client in clients:  # every client connects before any request is made
            client.connect()
        for _ in range(3):
            for client in clients:
                client.request("GET", "/healthz")
                response = client.getresponse()
                assert response.status == 200
                response.read()
    finally:
        for client in clients:
            client.close()
        server.terminate()
        server.wait(timeout=20)
    per_worker = served_by(log_path)
    assert sum(per_worker.values()) == 3 * CLIENTS
    # Both workers serve; a fair split gives 48 each, and more than 84 of 96 on one worker has
    # a chance of a few in a million with the kernel's hash.
    assert len(per_worker) == 2
    assert max(per_worker.values()) <= 84, per_worker
