"""What the benchmark scripts share: throwaway databases and a production-configured gunicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRETS = {
    "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
    "JWT_SECRET_KEY": "bench-jwt-secret-key-0123456789abcdef012345",
}


def admin_url() -> str:
    """The maintenance database used to create and drop the benchmark databases."""
    return os.environ.get("BENCH_ADMIN_URL", DEFAULT_ADMIN_URL)


def create_database(admin: str, prefix: str = "parley_bench") -> tuple[str, str]:
    """Create an empty database; return its name and its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{url}/{name}"


def drop_database(admin: str, name: str) -> None:
    """Drop a benchmark database, disconnecting whoever is still on it."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def production_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production-configured Parley on ``database_url``."""
    return {
        **os.environ,
        **SECRETS,
        "PARLEY_ENV": "production",
        "FLASK_APP": "wsgi.py",
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def migrate(database_url: str) -> None:
    """Bring a database to the newest migration with ``flask db upgrade``."""
    subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"],
        cwd=ROOT,
        env=production_env(database_url),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_server(
    env: dict[str, str],
    port: int,
    app: str = "wsgi:app",
    ready_path: str = "/readyz",
    tree: Path = ROOT,
) -> subprocess.Popen[bytes]:
    """Start ``gunicorn -c gunicorn.conf.py <app>`` of the work tree ``tree`` on ``port``.

    Its log goes to the file ``BENCH_SERVER_LOG`` names, if set (else nowhere).
    """
    log_path = os.environ.get("BENCH_SERVER_LOG")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app],
        cwd=tree,
        env={**env, "PORT": str(port), "HOST": "127.0.0.1"},
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "ab") if log_path else subprocess.DEVNULL,  # noqa: SIM115
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("gunicorn did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn (SIGTERM, then SIGKILL after 20 s)."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
