"""Faults from outside, against real gunicorn: the database restarting under load, workers killed
in the middle of sends, Redis stopping mid-run. Nothing acknowledged may be lost, nothing may be
stored twice, and no request may get a 500 or hang."""

from __future__ import annotations

import glob
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flask_migrate
import psycopg
import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from app.database import db
from tests.conftest import make_app
from tests.e2e.conftest import free_port, start_gunicorn
from tests.e2e.test_gunicorn_auth import bearer, register_and_login

pytestmark = pytest.mark.e2e

#: No request may take longer than this, outage or not (the connect timeout is 5 s).
MAX_SECONDS = 12


def postgres_bin() -> Path | None:
    """The directory of PostgreSQL's server programs (initdb, pg_ctl), if installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


@dataclass
class OwnPostgres:
    """A private PostgreSQL server the test may stop and start at will."""

    bindir: Path
    datadir: Path
    port: int
    as_postgres: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/parley"

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1"
        self.ctl("-o", options, "-l", str(self.datadir / "server.log"), "-w", "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "-w", "stop")


@pytest.fixture
def own_postgres(is_postgres: bool) -> Iterator[OwnPostgres]:
    """Initialise, start, migrate and finally remove a private PostgreSQL server."""
    if not is_postgres:
        pytest.skip("the database fault tests run in the PostgreSQL pass")
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL's server programs are not installed")
    root = Path(tempfile.mkdtemp(prefix="parley-pg-"))
    datadir = root / "data"
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        as_postgres = ["runuser", "-u", "postgres", "--"]
        datadir.mkdir()
        shutil.chown(datadir, "postgres", "postgres")
        root.chmod(0o755)
    server = OwnPostgres(bindir, datadir, free_port(), as_postgres)
    subprocess.run(
        [*as_postgres, str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres"]
        + ["--auth=trust", "--no-sync"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server.start()
    try:
        admin = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE parley")
        app = make_app(server.url)
        with app.app_context():
            flask_migrate.upgrade()
            db.engine.dispose()
        yield server
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)


def stored_rows(database_url: str, conversation_id: int) -> list[tuple[int, str | None]]:
    """``(seq, client_id)`` of each message of a conversation, straight from the database."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT seq, client_id FROM messages WHERE conversation_id = :cid ORDER BY seq"
                ),
                {"cid": conversation_id},
            ).all()
    finally:
        engine.dispose()
    return [(row[0], row[1]) for row in rows]


def stored_client_ids(database_url: str, conversation_id: int) -> list[str]:
    """Every client_id stored in a conversation, repeats included."""
    return [client_id for _, client_id in stored_rows(database_url, conversation_id) if client_id]


def stored_seqs(database_url: str, conversation_id: int) -> list[int]:
    """The seq of every stored message of a conversation, ascending."""
    return [seq for seq, _ in stored_rows(database_url, conversation_id)]


def direct_chat(base: str, tag: str) -> tuple[str, str, int]:
    """Two users and their direct conversation: (sender token, other token, conversation id)."""
    alice = register_and_login(base, f"alice{tag}")["access_token"]
    bob = register_and_login(base, f"bob{tag}")["access_token"]
    bob_id = requests.get(f"{base}/api/v1/users/me", headers=bearer(bob), timeout=10).json()["id"]
    chat = requests.post(
        f"{base}/api/v1/conversations",
        json={"kind": "direct", "member_ids": [bob_id]},
        headers=bearer(alice),
        timeout=10,
    ).json()
    return alice, bob, int(chat["id"])


@dataclass
class Load:
    """Steady sends and reads from several threads, recording every outcome."""

    base: str
    token: str
    conversation_id: int
    acknowledged: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    slowest: float = 0.0
    problems_ok: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def record(self, response: requests.Response, elapsed: float) -> None:
        with self.lock:
            self.statuses.append(response.status_code)
            self.slowest = max(self.slowest, elapsed)
            if response.status_code >= 400:
                is_problem = response.headers.get("Content-Type") == "application/problem+json"
                if response.status_code == 503:  # clients are told when to come back
                    is_problem = is_problem and bool(response.headers.get("Retry-After"))
                self.problems_ok = self.problems_ok and is_problem

    def sender(self, k: int) -> None:
        url = f"{self.base}/api/v1/conversations/{self.conversation_id}/messages"
        i = 0
        while not self.stop.is_set():
            client_id = f"s{k}-{i}"
            i += 1
            started = time.monotonic()
            try:
                response = requests.post(
                    url,
                    json={"body": f"load {client_id}", "client_id": client_id},
                    headers=bearer(self.token),
                    timeout=30,
                )
            except requests.RequestException:
                with self.lock:
                    self.unanswered.append(client_id)
                continue
            self.record(response, time.monotonic() - started)
            if response.status_code == 201:
                with self.lock:
                    self.acknowledged.append(client_id)
            time.sleep(0.01)

    def reader(self) -> None:
        url = f"{self.base}/api/v1/conversations/{self.conversation_id}/messages?limit=20"
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                response = requests.get(url, headers=bearer(self.token), timeout=30)
            except requests.RequestException:
                continue
            self.record(response, time.monotonic() - started)
            time.sleep(0.01)

    def run(self, senders: int, readers: int, during: Any) -> None:
        threads = [threading.Thread(target=self.sender, args=(k,)) for k in range(senders)]
        threads += [threading.Thread(target=self.reader) for _ in range(readers)]
        for thread in threads:
            thread.start()
        try:
            during()
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(60)


def test_database_restart_under_load(
    app: Flask, own_postgres: OwnPostgres, tmp_path: Path, report: Callable[[str], None]
) -> None:
    server, base = start_gunicorn(own_postgres.url, tmp_path / "server.log", workers=2)
    try:
        alice, _, conversation_id = direct_chat(base, "db")
        load = Load(base, alice, conversation_id)
        outage: dict[str, float] = {}

        def restart_the_database() -> None:
            time.sleep(2)
            outage["start"] = time.monotonic()
            own_postgres.stop()
            time.sleep(3)
            own_postgres.start()
            outage["end"] = time.monotonic()
            time.sleep(4)

        load.run(senders=4, readers=2, during=restart_the_database)

        # Service resumed without restarting the app: a fresh send and read succeed.
        url = f"{base}/api/v1/conversations/{conversation_id}/messages"
        after = requests.post(url, json={"body": "after"}, headers=bearer(alice), timeout=10)
        assert after.status_code == 201, after.text
        assert requests.get(url, headers=bearer(alice), timeout=10).status_code == 200
        assert server.poll() is None  # the same gunicorn, never restarted
    finally:
        server.terminate()
        server.wait(timeout=20)

    counts = {s: load.statuses.count(s) for s in sorted(set(load.statuses))}
    assert set(counts) <= {200, 201, 503}, counts  # never a 500
    assert counts.get(503, 0) > 0, "the outage was not seen"
    assert load.problems_ok  # each 503 was problem+json with Retry-After
    assert load.slowest < MAX_SECONDS, load.slowest
    stored = stored_client_ids(own_postgres.url, conversation_id)
    missing = set(load.acknowledged) - set(stored)
    report(
        f"database restart: {len(load.acknowledged)} acknowledged sends checked, "
        f"{len(missing)} missing; statuses {counts}; "
        f"outage {outage['end'] - outage['start']:.1f} s; slowest request {load.slowest:.1f} s"
    )
    assert not missing
    assert len(stored) == len(set(stored))  # nothing stored twice


def worker_pids(master: int) -> list[int]:
    """The live child processes of gunicorn's master (its workers)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master and fields[0] != "Z":
            children.append(int(stat.parent.name))
    return children


def test_killed_workers_leave_whole_sends_and_retries_do_not_duplicate(
    app: Flask,
    database_url: str,
    _schema: None,
    is_postgres: bool,
    tmp_path: Path,
    report: Callable[[str], None],
) -> None:
    if not is_postgres:
        pytest.skip("runs in the PostgreSQL pass (the SQLite pass covers load without kills)")
    server, base = start_gunicorn(database_url, tmp_path / "server.log", workers=3)
    try:
        alice, _, conversation_id = direct_chat(base, "kill")
        load = Load(base, alice, conversation_id)
        kills = 0

        def kill_workers() -> None:
            nonlocal kills
            rng = random.Random(7)
            for _ in range(6):
                time.sleep(0.7)
                pids = worker_pids(server.pid)
                if pids:
                    os.kill(rng.choice(pids), signal.SIGKILL)
                    kills += 1
            time.sleep(2)  # gunicorn replaces the dead workers

        load.run(senders=4, readers=1, during=kill_workers)

        # A client that got no answer retries with the same client_id.
        url = f"{base}/api/v1/conversations/{conversation_id}/messages"
        retried: dict[str, int] = {}
        for client_id in load.unanswered:
            response = requests.post(
                url,
                json={"body": f"load {client_id}", "client_id": client_id},
                headers=bearer(alice),
                timeout=10,
            )
            retried[client_id] = response.status_code
    finally:
        server.terminate()
        server.wait(timeout=20)

    assert kills >= 3
    assert set(load.statuses) <= {200, 201}, set(load.statuses)
    assert set(retried.values()) <= {200, 201}, retried
    stored = stored_client_ids(database_url, conversation_id)
    assert len(stored) == len(set(stored))  # no send stored twice, retries included
    assert set(load.acknowledged) <= set(stored)
    assert set(retried) <= set(stored)  # every retried send is there exactly once
    seqs = stored_seqs(database_url, conversation_id)
    assert seqs == list(range(1, len(seqs) + 1))  # a killed send left no hole
    replayed = sum(1 for status in retried.values() if status == 200)
    report(
        f"worker kills: {kills} workers killed; {len(load.acknowledged)} acknowledged sends all "
        f"stored; {len(retried)} unanswered sends retried ({replayed} had been stored, "
        f"{len(retried) - replayed} had not); no duplicates, seq 1..{len(seqs)} without gaps"
    )


def test_redis_stopped_mid_run_degrades_to_polling(
    app: Flask,
    database_url: str,
    _schema: None,
    own_redis: tuple[subprocess.Popen[bytes], str],
    tmp_path: Path,
) -> None:
    redis_process, redis_url = own_redis
    server, base = start_gunicorn(
        database_url,
        tmp_path / "server.log",
        workers=2,
        REDIS_URL=redis_url,
        EVENTS_POLL_SECONDS="1",
    )
    try:
        alice, bob, conversation_id = direct_chat(base, "redis")
        url = f"{base}/api/v1/conversations/{conversation_id}/messages"
        cursor = requests.get(f"{base}/api/v1/events", headers=bearer(bob), timeout=10).json()
        cursor = cursor["next"]
        received: list[str] = []
        delays: list[float] = []
        for round_number, body in enumerate(["with redis", "redis gone", "still polling"]):
            if round_number == 1:
                redis_process.kill()
                redis_process.wait()
            result: dict[str, Any] = {}

            def long_poll(since: str = cursor, result: dict[str, Any] = result) -> None:
                result["response"] = requests.get(
                    f"{base}/api/v1/events",
                    params={"since": since, "timeout": 20},
                    headers=bearer(bob),
                    timeout=30,
                )
                result["at"] = time.monotonic()

            poller = threading.Thread(target=long_poll)
            poller.start()
            time.sleep(0.5)
            sent = requests.post(url, json={"body": body}, headers=bearer(alice), timeout=10)
            sent_at = time.monotonic()
            assert sent.status_code == 201  # publishing to a dead Redis fails quietly
            poller.join(30)
            response = result["response"]
            assert response.status_code == 200
            page = response.json()
            received += [
                e["data"]["body"] for e in page["events"] if e["type"] == "message.created"
            ]
            delays.append(result["at"] - sent_at)
            cursor = page["next"]
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert received == ["with redis", "redis gone", "still polling"]
    # Without Redis a waiting reader finds the event at its next database check (1 s here).
    assert max(delays[1:]) < 3, delays
