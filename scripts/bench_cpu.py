"""CPU time of one request, per scenario, inside one process: the cost the worker itself pays.

wrk's figures on a shared 2-core machine move by a third between runs. This measures what an
optimisation changes more steadily: the process CPU time (``time.process_time``) of requests sent
through ``app.test_client()`` to the production configuration on a seeded PostgreSQL database
(the *small* data set), without HTTP parsing, sockets or thread switches. Time spent waiting for
PostgreSQL is not counted; the round trips each request makes are, as their statement count.

Each scenario is warmed up, then measured in five rounds; the table shows the fastest and the
median round (ms of CPU per request).

    python scripts/bench_cpu.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench_common import ROOT, admin_url, create_database, drop_database, migrate, production_env
from bench_seed import PASSWORD, SCALES, seed

ROUNDS = 5
HISTORY = "/api/v1/conversations/1/messages"


def main() -> None:
    """Seed the small data set, then time every scenario in-process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per scenario")
    parser.add_argument("--admin-url", default=admin_url())
    args = parser.parse_args()
    name, database_url = create_database(args.admin_url)
    try:
        migrate(database_url)
        seed(database_url, SCALES["small"], log=False)
        for key, value in production_env(
            database_url, RATELIMIT_ENABLED="false", LOG_LEVEL="INFO"
        ).items():
            os.environ[key] = value
        sys.path.insert(0, str(ROOT))
        run(args.requests)
    finally:
        drop_database(args.admin_url, name)


def run(requests: int) -> None:
    """Time each scenario and print the table."""
    import logging

    from sqlalchemy import event

    from app import create_app
    from app.database import db
    from config import ProductionConfig

    app = create_app(ProductionConfig, RATELIMIT_ENABLED=False)
    sink = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
    for handler in logging.getLogger("parley").handlers:  # access lines: formatted, not shown
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
    client = app.test_client()
    login = client.post("/api/v1/auth/login", json={"login": "user1", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}

    def get(path: str) -> Callable[[], Any]:
        return lambda: client.get(path, headers=headers)

    def send() -> Any:
        body = {"body": "counted", "client_id": uuid.uuid4().hex}
        return client.post(HISTORY, json=body, headers=headers)

    scenarios = [
        ("GET /users/me", get("/api/v1/users/me")),
        ("GET /conversations (20), many-conversations user", get("/api/v1/conversations?limit=20")),
        (
            "GET newest 50 messages of the big group",
            get("/api/v1/conversations/1/messages?limit=50"),
        ),
        ("POST a message into the 50-member group", send),
    ]
    with app.app_context():
        engine = db.engine
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append("s"))
    print("\n| scenario | CPU ms per request (fastest round) | median round | SQL/request |")
    print("|---|---:|---:|---:|")
    for label, call in scenarios:
        for _ in range(max(50, requests // 10)):
            assert call().status_code < 300, label
        statements.clear()
        assert call().status_code < 300, label
        count = len(statements)
        per_round = max(1, requests // ROUNDS)
        rounds = []
        for _ in range(ROUNDS):
            started = time.process_time()
            for _ in range(per_round):
                call()
            rounds.append((time.process_time() - started) / per_round * 1000)
        print(f"| {label} | {min(rounds):.2f} | {statistics.median(rounds):.2f} | {count} |")
    engine.dispose()


if __name__ == "__main__":
    main()
