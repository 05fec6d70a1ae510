"""Event delivery latency: from the sender's 201 to each idle listener's wake-up.

Starts gunicorn (production configuration) on a fresh PostgreSQL database, connects N idle
long-poll listeners (members of one group), then sends messages one at a time and records, for
every listener and message, the time from the sender's 201 to the listener's response. Runs
twice: with REDIS_URL (wake-ups through Redis pub/sub) and without (database polling).

    python scripts/bench_events.py [--listeners 200] [--messages 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid

import requests
from bench_common import (
    admin_url,
    create_database,
    drop_database,
    migrate,
    percentile,
    production_env,
    start_server,
    stop_server,
)

PASSWORD = "benchmark password 1"


def run(redis_url: str, listeners: int, messages: int, database_url: str) -> dict[str, float]:
    port = 8700 + (1 if redis_url else 0)
    base = f"http://127.0.0.1:{port}/api/v1"
    env = production_env(
        database_url,
        REDIS_URL=redis_url,
        PASSWORD_HASH_METHOD="scrypt:1024:8:1",  # setup speed; logins are not measured here
        RATELIMIT_ENABLED="false",
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS=str(listeners + 32),  # every listener holds a thread while it waits
        EVENTS_POLL_SECONDS="1",
        GUNICORN_GRACEFUL_TIMEOUT="3",  # idle long-polls need not finish at the end
    )
    server = start_server(env, port)
    try:
        http = requests.Session()
        tag = uuid.uuid4().hex[:6]

        def account(name: str) -> tuple[int, str]:
            http.post(
                f"{base}/auth/register",
                json={"email": f"{name}@bench.io", "username": name, "password": PASSWORD},
                timeout=30,
            )
            token = http.post(
                f"{base}/auth/login", json={"login": name, "password": PASSWORD}, timeout=30
            ).json()["access_token"]
            return int(
                http.get(
                    f"{base}/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
                ).json()["id"]
            ), token

        sender_id, sender = account(f"s{tag}")
        people = [account(f"l{tag}{i}") for i in range(listeners)]
        group = http.post(
            f"{base}/conversations",
            json={"kind": "group", "title": "bench", "member_ids": [p[0] for p in people]},
            headers={"Authorization": f"Bearer {sender}"},
            timeout=60,
        ).json()["id"]
        acks: dict[int, float] = {}
        latencies: list[float] = []
        lock = threading.Lock()
        ready = threading.Barrier(listeners + 1)
        done = threading.Event()

        def listen(token: str) -> None:
            session = requests.Session()
            headers = {"Authorization": f"Bearer {token}"}
            cursor = session.get(f"{base}/events", headers=headers, timeout=30).json()["next"]
            ready.wait()
            while not done.is_set():
                try:
                    body = session.get(
                        f"{base}/events",
                        params={"since": cursor, "timeout": 30},
                        headers=headers,
                        timeout=60,
                    ).json()
                except requests.RequestException:
                    return  # the server is shutting down at the end of the run
                now = time.monotonic()
                cursor = body["next"]
                for event in body["events"]:
                    if event["type"] == "message.created":
                        seq = event["data"]["seq"]
                        while seq not in acks and not done.is_set():
                            time.sleep(0.001)
                        with lock:
                            latencies.append(now - acks.get(seq, now))

        threads = [
            threading.Thread(target=listen, args=(token,), daemon=True) for _, token in people
        ]
        for thread in threads:
            thread.start()
        ready.wait()
        time.sleep(2)  # every listener is now waiting inside a long-poll
        for _ in range(messages):
            response = http.post(
                f"{base}/conversations/{group}/messages",
                json={"body": "tick"},
                headers={"Authorization": f"Bearer {sender}"},
                timeout=30,
            )
            acks[response.json()["seq"]] = time.monotonic()
            time.sleep(1.2)
        deadline = time.monotonic() + 10
        while len(latencies) < listeners * messages and time.monotonic() < deadline:
            time.sleep(0.1)
        done.set()
        received = len(latencies)
        ms = [max(v, 0.0) * 1000 for v in latencies]
        return {
            "samples": received,
            "expected": listeners * messages,
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
            "mean_ms": statistics.fmean(ms),
        }
    finally:
        stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--admin-url", default=admin_url())
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )
    args = parser.parse_args()
    name, database_url = create_database(args.admin_url)
    try:
        migrate(database_url)
        rows = []
        for label, redis_url in (("with Redis", args.redis_url), ("without Redis (1 s poll)", "")):
            result = run(redis_url, args.listeners, args.messages, database_url)
            rows.append((label, result))
        print(
            f"\nEvent delivery latency, {args.listeners} idle long-poll listeners, "
            f"{args.messages} messages (sender's 201 -> listener's wake-up)\n"
        )
        print("| wake-ups | p50 ms | p99 ms | mean ms | deliveries |")
        print("|---|---:|---:|---:|---:|")
        for label, r in rows:
            figures = f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['mean_ms']:.1f}"
            print(f"| {label} | {figures} | {r['samples']}/{r['expected']} |")
        if any(r["samples"] != r["expected"] for _, r in rows):
            raise SystemExit("some deliveries were missing")
    finally:
        drop_database(args.admin_url, name)


if __name__ == "__main__":
    main()
