"""Login limits shared by every gunicorn worker through Redis, and what happens when Redis dies."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests
from flask import Flask

from tests.e2e.conftest import start_gunicorn

pytestmark = pytest.mark.e2e


def test_login_limit_holds_across_workers_and_survives_redis_loss(
    app: Flask,
    database_url: str,
    _schema: None,
    own_redis: tuple[subprocess.Popen[bytes], str],
    tmp_path: Path,
) -> None:
    redis_process, redis_url = own_redis
    server, base = start_gunicorn(
        database_url,
        tmp_path / "limits.log",
        workers=3,
        REDIS_URL=redis_url,
        RATELIMIT_ENABLED="true",
        RATELIMIT_AUTH="10 per minute",
    )
    try:

        def attempt() -> int:
            # A new connection each time, so the attempts spread over the workers.
            return requests.post(
                f"{base}/api/v1/auth/login",
                json={"login": "victim", "password": "guess guess guess"},
                headers={"Connection": "close"},
                timeout=10,
            ).status_code

        codes = [attempt() for _ in range(10)]
        assert codes == [401] * 10
        after = [attempt() for _ in range(6)]
        assert after == [429] * 6  # the 11th and later, whichever worker serves them

        redis_process.kill()
        redis_process.wait()
        # Redis is gone: every worker falls back to its own in-memory limit. It keeps answering,
        # and it still limits: three workers allow at most 3 x 10 more attempts.
        degraded = [attempt() for _ in range(60)]
        assert set(degraded) <= {401, 429}, degraded
        assert degraded.count(401) <= 30 and degraded.count(429) >= 30, degraded
    finally:
        server.terminate()
        server.wait(timeout=20)
    log = (tmp_path / "limits.log").read_text()
    assert "falling back to in-memory storage" in log or "Rate limit storage unreachable" in log
