"""A real gunicorn server with several workers on the test database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Ask the kernel for a free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(
    database_url: str, log_path: Path, workers: int = 3, **extra_env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``gunicorn -c gunicorn.conf.py wsgi:app`` in production mode; wait until it answers."""
    port = free_port()
    env = {
        **os.environ,
        "PARLEY_ENV": "production",
        "SECRET_KEY": "e2e-secret-key-0123456789abcdef0123456789",
        "JWT_SECRET_KEY": "e2e-jwt-secret-key-0123456789abcdef012345",
        "DATABASE_URL": database_url,
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        "WEB_CONCURRENCY": str(workers),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "GUNICORN_THREADS": "8",
        "RATELIMIT_ENABLED": "false",  # load-style tests; the rate-limit tests switch it on
        **extra_env,
    }
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log_path.read_text()}")
        try:
            if requests.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return process, base_url
        except requests.RequestException:  # not listening, or still booting
            pass
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"gunicorn did not become ready: {log_path.read_text()}")


@pytest.fixture(scope="module")
def server(
    database_url: str, _schema: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL of a 3-worker gunicorn serving the test database."""
    process, base_url = start_gunicorn(
        database_url, tmp_path_factory.mktemp("gunicorn") / "server.log"
    )
    yield base_url
    process.terminate()
    process.wait(timeout=15)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A private redis-server, so the test can stop it without disturbing anything else."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield process, url
    process.kill()
    process.wait()
