"""SIGTERM under load: in-flight requests finish, waiting readers answer, nothing acknowledged
is lost, and the server stops well before its graceful timeout."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from app.database import db
from app.models import Message
from tests.e2e.conftest import start_gunicorn
from tests.e2e.test_gunicorn_auth import bearer, register_and_login

pytestmark = pytest.mark.e2e

SENDERS = 6


def test_sigterm_under_load_loses_no_acknowledged_request(
    app: Flask,
    database_url: str,
    _schema: None,
    tmp_path: Path,
    is_postgres: bool,
    report: Callable[[str], None],
) -> None:
    server, base = start_gunicorn(
        database_url, tmp_path / "server.log", workers=2, GUNICORN_GRACEFUL_TIMEOUT="20"
    )
    try:
        api = f"{base}/api/v1"
        alice = register_and_login(base, "alice")["access_token"]
        bob = register_and_login(base, "bob")["access_token"]
        bob_id = requests.get(f"{api}/users/me", headers=bearer(bob), timeout=10).json()["id"]
        chat = requests.post(
            f"{api}/conversations",
            json={"kind": "direct", "member_ids": [bob_id]},
            headers=bearer(alice),
            timeout=10,
        ).json()
        url = f"{api}/conversations/{chat['id']}/messages"
        # Carol is in no conversation: her long-poll has nothing to return and waits.
        carol = register_and_login(base, "carol")["access_token"]
        carol_cursor = requests.get(f"{api}/events", headers=bearer(carol), timeout=10).json()[
            "next"
        ]

        acknowledged: list[str] = []
        statuses: list[int] = []
        refused = 0
        lock = threading.Lock()
        stop = threading.Event()

        def sender(k: int) -> None:
            nonlocal refused
            session = requests.Session()  # keep-alive, like a real client
            i = 0
            while not stop.is_set():
                client_id = f"s{k}-{i}"
                i += 1
                try:
                    response = session.post(
                        url,
                        json={"body": f"load {client_id}", "client_id": client_id},
                        headers=bearer(alice),
                        timeout=30,
                    )
                except requests.ConnectionError:
                    # Refused or closed before an answer: not acknowledged. Reconnect and go on
                    # until the server is gone.
                    with lock:
                        refused += 1
                    if server.poll() is not None:
                        return
                    session = requests.Session()
                    time.sleep(0.05)
                    continue
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 201:
                        acknowledged.append(client_id)

        def sse() -> bool:
            with requests.get(
                f"{api}/events/stream", headers=bearer(bob), stream=True, timeout=60
            ) as response:
                assert response.status_code == 200
                for _ in response.iter_lines():
                    pass  # until the server ends the stream
            return True  # ended cleanly (no exception from a cut connection)

        with ThreadPoolExecutor(SENDERS + 2) as pool:
            stream = pool.submit(sse)
            senders = [pool.submit(sender, k) for k in range(SENDERS)]
            time.sleep(1.5)
            waiting_statuses = len(statuses)
            assert waiting_statuses > 0, "the load never got going"
            poll = pool.submit(
                requests.get,
                f"{api}/events",
                params={"since": carol_cursor, "timeout": 30},
                headers=bearer(carol),
                timeout=60,
            )
            time.sleep(0.5)
            terminated_at = time.monotonic()
            server.send_signal(signal.SIGTERM)
            exit_code = server.wait(timeout=25)
            stopped_after = time.monotonic() - terminated_at
            stop.set()
            for future in senders:
                future.result()
            assert stream.result(timeout=10) is True
            polled = poll.result(timeout=10)
    finally:
        if server.poll() is None:  # the test failed before SIGTERM
            server.kill()
            server.wait(timeout=15)

    assert exit_code == 0
    # Waiting readers answered at once instead of holding the workers for 20 s.
    assert stopped_after < 10, stopped_after
    assert polled.status_code == 200
    assert polled.json() == {"events": [], "next": carol_cursor}
    assert set(statuses) <= {201}, set(statuses)
    assert acknowledged

    with app.app_context():
        stored = set(
            db.session.scalars(
                sa.select(Message.client_id).where(Message.conversation_id == chat["id"])
            )
        )
    missing = set(acknowledged) - stored
    report(
        f"SIGTERM under load: {len(acknowledged)} acknowledged sends, all checked, "
        f"{len(missing)} missing; {refused} refused while stopping; "
        f"stopped in {stopped_after:.1f} s"
    )
    assert not missing
