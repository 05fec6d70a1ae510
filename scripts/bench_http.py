"""HTTP throughput and latency of Parley against a bare-Flask ceiling, at two data scales.

1. The ceiling: ``scripts/bench_ceiling.py`` (one route, a small JSON object) under the same
   gunicorn configuration, driven by wrk like every scenario.
2. For each scale (small, large; see ``bench_seed.py``): a fresh PostgreSQL database, migrated
   and bulk-seeded, gunicorn with the production configuration (2 gthread workers), and wrk on
   loopback running each scenario at 1 and at 32 connections after a short warm-up.
3. The floors (small scale only): ``scripts/bench_floor.py``, Parley's app with routes that do
   only what every endpoint of their kind must (request handling, one statement, the token and
   session check), measured at 32 connections: no endpoint can beat its floor's share; and
   ``GET /users/me`` on psycopg alone, to show what leaving SQLAlchemy out would buy.
4. The SQL statements one request of each scenario runs, counted with SQLAlchemy's
   ``before_cursor_execute`` hook on an in-process app on the same database.

Prints one markdown table per scale, the scale ratios and the statement counts; exits non-zero
when a run had errors.

    python scripts/bench_http.py [--duration 8] [--scales small,large]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from bench_common import (
    ROOT,
    admin_url,
    create_database,
    drop_database,
    migrate,
    production_env,
    start_server,
    stop_server,
)
from bench_seed import PASSWORD, SCALES, seed

PORT = 8710
CONNECTIONS = (1, 32)
WRK = ROOT / "scripts" / "wrk"


@dataclass(frozen=True)
class Scenario:
    """One request, repeated by wrk."""

    key: str
    label: str
    method: str
    path: str
    script: str
    user: str  # "heavy" (user 1), "light" (10 conversations), or "" (no token)
    read: bool = True


SCENARIOS = [
    Scenario("me", "GET /users/me", "GET", "/api/v1/users/me", "get.lua", "heavy"),
    Scenario(
        "conversations",
        "GET /conversations (20), many-conversations user",
        "GET",
        "/api/v1/conversations?limit=20",
        "get.lua",
        "heavy",
    ),
    Scenario(
        "conversations_light",
        "GET /conversations (20), 10-conversations user",
        "GET",
        "/api/v1/conversations?limit=20",
        "get.lua",
        "light",
    ),
    Scenario(
        "messages",
        "GET newest 50 messages of the big group",
        "GET",
        "/api/v1/conversations/1/messages?limit=50",
        "get.lua",
        "heavy",
    ),
    Scenario(
        "send",
        "POST a message into the 50-member group",
        "POST",
        "/api/v1/conversations/1/messages",
        "post_message.lua",
        "heavy",
        read=False,
    ),
    Scenario(
        "login",
        "POST /auth/login (scrypt, on purpose slow)",
        "POST",
        "/api/v1/auth/login",
        "login.lua",
        "",
        read=False,
    ),
]


@dataclass
class Result:
    """What wrk reported for one run."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


def parse_duration_ms(text: str) -> float:
    """wrk's '1.23ms', '456.00us' or '1.10s' in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk duration {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(url: str, script: str, connections: int, seconds: int, env: dict[str, str]) -> Result:
    """Run wrk once and parse its report."""
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "30s",
        "-s",
        str(WRK / script),
        url,
    ]
    out = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = parse_duration_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = parse_duration_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    return Result(rps, p50, p99, errors, total)


def measure(url: str, script: str, connections: int, seconds: int, env: dict[str, str]) -> Result:
    """One wrk run; at several connections the better of two runs.

    On a shared 2-core machine a run at 32 connections can lose a third to whatever else the
    machine does meanwhile; two runs, keeping the better, measure the server rather than that
    (the ceiling gets the same treatment).
    """
    first = run_wrk(url, script, connections, seconds, env)
    if connections == 1:
        return first
    second = run_wrk(url, script, connections, seconds, env)
    best = max(first, second, key=lambda r: r.rps)
    best.errors = first.errors + second.errors
    return best


def ceiling(seconds: int) -> dict[int, Result]:
    """Measure the bare Flask app under the same gunicorn configuration."""
    env = production_env("sqlite://", RATELIMIT_ENABLED="false")
    server = start_server(env, PORT, app="scripts.bench_ceiling:app", ready_path="/ping")
    try:
        url = f"http://127.0.0.1:{PORT}/ping"
        run_wrk(url, "get.lua", 32, 2, {})
        return {c: measure(url, "get.lua", c, seconds, {}) for c in CONNECTIONS}
    finally:
        stop_server(server)


#: Parley's stack without an endpoint's work (``scripts/bench_floor.py``), at 32 connections.
FLOORS = [
    ("plain", "Parley's request handling, no database"),
    ("statement", "… plus one statement (`SELECT 1`)"),
    ("authenticated", "… token and session check (one statement), nothing else"),
    ("driver", "`GET /users/me` on psycopg directly, SQLAlchemy left out"),
]


def floors(env: dict[str, str], token: str, seconds: int) -> dict[str, Result]:
    """Serve ``scripts/bench_floor.py`` with Parley's configuration; measure each floor route."""
    server = start_server(env, PORT, app="scripts.bench_floor:app")
    try:
        results = {}
        for key, _label in FLOORS:
            url = f"http://127.0.0.1:{PORT}/floor/{key}"
            wrk_env = {"PARLEY_TOKEN": token}
            run_wrk(url, "get.lua", 32, 2, wrk_env)
            results[key] = measure(url, "get.lua", 32, seconds, wrk_env)
        return results
    finally:
        stop_server(server)


def login(base: str, username: str) -> str:
    """An access token for ``username``."""
    response = requests.post(
        f"{base}/api/v1/auth/login", json={"login": username, "password": PASSWORD}, timeout=60
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def body(scenario: Scenario) -> dict[str, str] | None:
    """The JSON body of one request of ``scenario`` (the wrk scripts send the same)."""
    if scenario.key == "send":
        return {"body": "counted", "client_id": uuid.uuid4().hex}
    if scenario.key == "login":
        return {"login": "user1", "password": PASSWORD}
    return None


def statement_counts(database_url: str, tokens: dict[str, str]) -> dict[str, int]:
    """Count the SQL statements of one request per scenario, in an in-process app."""
    for name, value in production_env(database_url).items():
        os.environ.setdefault(name, value)
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import event

    from app import create_app
    from app.database import db
    from config import ProductionConfig

    app = create_app(
        ProductionConfig, SQLALCHEMY_DATABASE_URI=database_url, RATELIMIT_ENABLED=False
    )
    client = app.test_client()
    counts: dict[str, int] = {}
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def count(*_: Any) -> None:
        seen.append("statement")

    event.listen(engine, "before_cursor_execute", count)
    try:
        for scenario in SCENARIOS:
            headers = {"Authorization": f"Bearer {tokens[scenario.user]}"} if scenario.user else {}
            for attempt in ("warm-up", "counted"):
                seen.clear()
                response = client.open(
                    scenario.path, method=scenario.method, json=body(scenario), headers=headers
                )
                assert response.status_code < 300, (scenario.key, attempt, response.status_code)
            counts[scenario.key] = len(seen)
    finally:
        event.remove(engine, "before_cursor_execute", count)
        engine.dispose()
    return counts


def bench_scale(scale_name: str, seconds: int, admin: str) -> dict[str, Any]:
    """Seed one scale, serve it, and run every scenario at every connection count."""
    scale = SCALES[scale_name]
    name, database_url = create_database(admin)
    try:
        migrate(database_url)
        seed(database_url, scale)
        env = production_env(
            database_url,
            RATELIMIT_ENABLED="false",
            ACCESS_TOKEN_MINUTES="120",
            LOG_LEVEL="INFO",  # production's default: one JSON access line per request
            REDIS_URL=os.environ.get("REDIS_URL", ""),
        )
        server = start_server(env, PORT)
        base = f"http://127.0.0.1:{PORT}"
        try:
            tokens = {"heavy": login(base, "user1"), "light": login(base, f"user{scale.users}")}
            results: dict[str, dict[int, Result]] = {}
            for scenario in SCENARIOS:
                wrk_env = {
                    "PARLEY_TOKEN": tokens.get(scenario.user, ""),
                    "PARLEY_RUN": uuid.uuid4().hex[:8],
                    "PARLEY_LOGIN": "user1",
                    "PARLEY_PASSWORD": PASSWORD,
                }
                url = base + scenario.path
                # Warm up (a login warm-up at 32 connections would leave a backlog of hashes).
                run_wrk(url, scenario.script, 1 if scenario.key == "login" else 32, 2, wrk_env)
                results[scenario.key] = {
                    c: measure(url, scenario.script, c, seconds, wrk_env) for c in CONNECTIONS
                }
                print(f"  {scale_name}: {scenario.label} done", flush=True)
        finally:
            stop_server(server)
        floor = floors(env, tokens["heavy"], seconds) if scale_name == "small" else {}
        counts = statement_counts(database_url, tokens)
        return {"results": results, "statements": counts, "floors": floor}
    finally:
        drop_database(admin, name)


def table(scale: str, data: dict[str, Any], top: dict[int, Result]) -> str:
    """A markdown table of one scale's results."""
    lines = [
        f"\n### {scale}\n",
        "| scenario | conns | req/s | % of ceiling | p50 ms | p99 ms | errors | SQL/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in CONNECTIONS:
        r = top[c]
        lines.append(
            f"| ceiling: bare Flask `GET /ping` | {c} | {r.rps:,.0f} | 100 % | "
            f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} | - |"
        )
    for scenario in SCENARIOS:
        for c in CONNECTIONS:
            r = data["results"][scenario.key][c]
            share = 100 * r.rps / top[c].rps
            rps = f"{r.rps:,.0f}" if r.rps >= 100 else f"{r.rps:.1f}"
            lines.append(
                f"| {scenario.label} | {c} | {rps} | {share:.1f} % | {r.p50_ms:.2f} | "
                f"{r.p99_ms:.2f} | {r.errors} | {data['statements'][scenario.key]} |"
            )
    return "\n".join(lines)


def main() -> None:
    """Run the ceiling and every scale; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    parser.add_argument("--scales", default="small,large")
    parser.add_argument("--admin-url", default=admin_url())
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    scales = [s.strip() for s in args.scales.split(",") if s.strip()]
    started = time.monotonic()
    print("ceiling: bare Flask", flush=True)
    first = ceiling(args.duration)
    data = {}
    for scale in scales:
        print(f"scale {scale}", flush=True)
        data[scale] = bench_scale(scale, args.duration, args.admin_url)
    print("ceiling again", flush=True)
    last = ceiling(args.duration)
    # The ceiling drifts on a shared machine; Parley is compared with the better of the two, at
    # the start and the end.
    top = {c: max(first[c], last[c], key=lambda r: r.rps) for c in CONNECTIONS}
    for c in CONNECTIONS:
        print(f"ceiling at {c} connections: {first[c].rps:,.0f} then {last[c].rps:,.0f} req/s")

    print(
        f"\n## HTTP benchmark: PostgreSQL, gunicorn 2 gthread workers, wrk on loopback, "
        f"{args.duration} s per run\n"
    )
    for scale in scales:
        print(table(scale, data[scale], top))
    if data.get("small", {}).get("floors"):
        print("\n### Floors at 32 connections (small data set)\n")
        print("| Parley's stack | req/s | % of ceiling | p50 ms | errors |")
        print("|---|---:|---:|---:|---:|")
        for key, label in FLOORS:
            r = data["small"]["floors"][key]
            share = 100 * r.rps / top[32].rps
            print(f"| {label} | {r.rps:,.0f} | {share:.1f} % | {r.p50_ms:.2f} | {r.errors} |")
    if "small" in data and "large" in data:
        print("\n### Scale ratios (p50 at large / p50 at small)\n")
        print("| scenario | 1 conn | 32 conns |\n|---|---:|---:|")
        for scenario in SCENARIOS:
            if not scenario.read:
                continue
            ratios = [
                data["large"]["results"][scenario.key][c].p50_ms
                / data["small"]["results"][scenario.key][c].p50_ms
                for c in CONNECTIONS
            ]
            print(f"| {scenario.label} | {ratios[0]:.2f} | {ratios[1]:.2f} |")
    for scale in scales:
        big = data[scale]["results"]
        ratios = [
            big["conversations"][c].p50_ms / big["conversations_light"][c].p50_ms
            for c in CONNECTIONS
        ]
        print(
            f"\n{scale}: GET /conversations p50, many- / 10-conversations user: "
            f"{ratios[0]:.2f} (1 conn), {ratios[1]:.2f} (32 conns)"
        )
    errors = sum(
        r.errors for d in data.values() for per in d["results"].values() for r in per.values()
    ) + sum(r.errors for d in data.values() for r in d["floors"].values())
    print(f"\nerrors: {errors}; wall time {time.monotonic() - started:.0f} s")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
