"""``/metrics`` under gunicorn: one scrape counts the requests of every worker."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from flask import Flask

from tests.e2e.conftest import start_gunicorn
from tests.metrics_helpers import sample_value

pytestmark = pytest.mark.e2e

BATCH = 30


def _served_by(log_path: Path) -> set[int]:
    """The pids of the workers that logged one of the test's requests so far."""
    return {
        entry["pid"]
        for entry in map(json.loads, log_path.read_text().splitlines())
        if str(entry.get("request_id", "")).startswith("metrics-")
    }


def test_a_scrape_sums_all_workers(
    app: Flask, database_url: str, _schema: None, tmp_path: Path, is_postgres: bool
) -> None:
    log_path = tmp_path / "server.log"
    server, base = start_gunicorn(database_url, log_path, workers=3, LOG_LEVEL="INFO")
    try:

        def hit(number: int) -> int:
            # A new connection each time, so the workers take turns accepting.
            response = requests.get(
                f"{base}/api/v1/users/me",
                headers={"X-Request-ID": f"metrics-{number}", "Connection": "close"},
                timeout=10,
            )
            return response.status_code

        # Which worker accepts a connection is up to the kernel and to timing: send batches until
        # at least two workers served some (the first batch nearly always does).
        sent = 0
        with ThreadPoolExecutor(max_workers=6) as pool:
            while sent < 10 * BATCH:
                assert set(pool.map(hit, range(sent, sent + BATCH))) == {401}
                sent += BATCH
                if len(_served_by(log_path)) >= 2:
                    break
        registered = requests.post(
            f"{base}/api/v1/auth/register",
            json={"email": "m@example.com", "username": "metered", "password": "pw-metrics-12345"},
            timeout=10,
        )
        assert registered.status_code == 201

        scrapes = [requests.get(f"{base}/metrics", timeout=10) for _ in range(6)]
    finally:
        server.terminate()
        server.wait(timeout=15)

    assert len(_served_by(log_path)) >= 2, "the requests should have been spread over workers"
    for scrape in scrapes:
        assert scrape.status_code == 200
        text = scrape.text
        # Whichever worker answers, it reports every worker's requests.
        assert (
            sample_value(
                text,
                "parley_http_requests_total",
                method="GET",
                endpoint="/api/v1/users/me",
                status="401",
            )
            == sent
        )
        assert (
            sample_value(
                text, "parley_http_requests_total", endpoint="/api/v1/auth/register", status="201"
            )
            == 1
        )
        # Per worker: DB_POOL_SIZE on PostgreSQL, SQLAlchemy's default of 5 for SQLite files.
        assert sample_value(text, "parley_db_pool_size") == 3 * (16 if is_postgres else 5)
        assert sample_value(text, "parley_db_pool_connections") >= 1
