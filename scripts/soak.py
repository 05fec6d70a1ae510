"""Soak: minutes of mixed traffic over every endpoint, watching worker memory and errors.

Starts gunicorn with the production configuration on a fresh PostgreSQL database (seeded with
the small benchmark data set), then runs client threads that each act as one user doing a
random mix of everything the API offers: registering, logging in, refreshing, reading and
editing the profile, searching users, starting conversations, adding members, sending, editing
and deleting messages, paging history, moving read markers, polling events, listing and
revoking sessions, logging out, and the probes and metrics. Every few seconds it samples each
worker's resident memory from /proc. Exits non-zero on any 5xx or when a worker's memory grew by
10 % or more between the end of the warm-up and the end of the run.

    python scripts/soak.py [--minutes 5] [--clients 8]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from bench_common import (
    admin_url,
    create_database,
    drop_database,
    migrate,
    production_env,
    start_server,
    stop_server,
)
from bench_seed import PASSWORD, SCALES, seed

PORT = 8720
BASE = f"http://127.0.0.1:{PORT}"
API = f"{BASE}/api/v1"
_names = itertools.count(1)


class Client:
    """One simulated user with a live session, doing random things."""

    def __init__(self, seed_value: int, statuses: Counter[int], lock: threading.Lock) -> None:
        self.rng = random.Random(seed_value)
        self.http = requests.Session()
        self.statuses = statuses
        self.lock = lock
        self.conversations: list[int] = []
        self.name = f"soak{next(_names)}_{uuid.uuid4().hex[:6]}"
        self.password = PASSWORD
        self.access = ""
        self.refresh = ""
        self.user_id = 0
        self.cursor = ""

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{API}{path}"
        headers = kwargs.pop("headers", {})
        if self.access and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.access}"
        response = self.http.request(method, url, headers=headers, timeout=30, **kwargs)
        with self.lock:
            self.statuses[response.status_code] += 1
        return response

    def sign_up(self) -> None:
        body = {"email": f"{self.name}@soak.example", "username": self.name, "password": PASSWORD}
        self.call("POST", "/auth/register", json=body)
        self.log_in()
        self.user_id = self.call("GET", "/users/me").json()["id"]
        self.cursor = self.call("GET", "/events").json()["next"]

    def log_in(self) -> None:
        self.access = ""
        pair = self.call("POST", "/auth/login", json={"login": self.name, "password": PASSWORD})
        tokens = pair.json()
        self.access, self.refresh = tokens["access_token"], tokens["refresh_token"]

    def step(self) -> None:
        """Do one random thing (weighted towards what chat clients do most)."""
        action = self.rng.choices(
            [
                self.send,
                self.history,
                self.list_conversations,
                self.poll_events,
                self.read_marker,
                self.start_conversation,
                self.edit_or_delete,
                self.profile,
                self.search,
                self.sessions,
                self.rotate,
                self.probes,
                self.relog,
            ],
            weights=[20, 15, 12, 10, 6, 4, 4, 4, 4, 3, 3, 3, 1],
        )[0]
        action()

    def conversation(self) -> int | None:
        return self.rng.choice(self.conversations) if self.conversations else None

    def send(self) -> None:
        cid = self.conversation()
        if cid is None:
            return self.start_conversation()
        body = {"body": f"soak {self.rng.random()}", "client_id": uuid.uuid4().hex}
        self.call("POST", f"/conversations/{cid}/messages", json=body)

    def history(self) -> None:
        cid = self.conversation()
        if cid is not None:
            page = self.call("GET", f"/conversations/{cid}/messages?limit=50").json()
            if page.get("items") and self.rng.random() < 0.3:
                first = page["items"][0]["seq"]
                self.call("GET", f"/conversations/{cid}/messages?before={first}&limit=20")

    def list_conversations(self) -> None:
        page = self.call("GET", "/conversations?limit=20").json()
        self.conversations = [c["id"] for c in page.get("items", [])] or self.conversations
        if page.get("next_cursor"):
            self.call("GET", "/conversations", params={"cursor": page["next_cursor"]})

    def poll_events(self) -> None:
        page = self.call("GET", "/events", params={"since": self.cursor, "timeout": 0})
        if page.status_code == 200:
            self.cursor = page.json()["next"]
        elif page.status_code == 410:
            self.cursor = self.call("GET", "/events").json()["next"]

    def read_marker(self) -> None:
        cid = self.conversation()
        if cid is not None:
            self.call("POST", f"/conversations/{cid}/read", json={"seq": 10**6})
            if self.rng.random() < 0.2:
                self.call("POST", f"/conversations/{cid}/unread", json={"seq": 1})
            self.call("GET", f"/conversations/{cid}")

    def start_conversation(self) -> None:
        other = self.rng.randint(1, SCALES["small"].users)
        if self.rng.random() < 0.5:
            body: dict[str, Any] = {"kind": "direct", "member_ids": [other]}
        else:
            body = {
                "kind": "group",
                "title": f"soak {self.rng.random():.4f}",
                "member_ids": [other],
            }
        response = self.call("POST", "/conversations", json=body)
        if response.status_code in (200, 201):
            cid = response.json()["id"]
            self.conversations.append(cid)
            self.call("GET", f"/conversations/{cid}/members")
            if body["kind"] == "group":
                extra = [self.rng.randint(1, SCALES["small"].users)]
                self.call("POST", f"/conversations/{cid}/members", json={"user_ids": extra})
                self.call("PATCH", f"/conversations/{cid}", json={"title": "renamed"})

    def edit_or_delete(self) -> None:
        cid = self.conversation()
        if cid is None:
            return
        sent = self.call(
            "POST", f"/conversations/{cid}/messages", json={"body": "to be changed"}
        ).json()
        if "seq" not in sent:
            return
        path = f"/conversations/{cid}/messages/{sent['seq']}"
        if self.rng.random() < 0.5:
            self.call("PATCH", path, json={"body": "changed"})
        else:
            self.call("DELETE", path)
        self.call("GET", path)

    def profile(self) -> None:
        self.call("GET", "/users/me")
        self.call("PATCH", "/users/me", json={"display_name": f"Soak {self.rng.randint(1, 99)}"})
        self.call("GET", f"/users/{self.rng.randint(1, SCALES['small'].users)}")

    def search(self) -> None:
        self.call("GET", "/users", params={"q": self.rng.choice(["user1", "soak", "us", "x"])})

    def sessions(self) -> None:
        listed = self.call("GET", "/auth/sessions").json()
        others = [s["id"] for s in listed.get("items", []) if not s.get("current")]
        if others:
            self.call("DELETE", f"/auth/sessions/{others[0]}")

    def rotate(self) -> None:
        tokens = self.call(
            "POST", "/auth/refresh", json={"refresh_token": self.refresh}, headers={}
        ).json()
        if "access_token" in tokens:
            self.access, self.refresh = tokens["access_token"], tokens["refresh_token"]

    def probes(self) -> None:
        self.call("GET", f"{BASE}/healthz")
        self.call("GET", f"{BASE}/readyz")
        self.call("GET", f"{BASE}/metrics")
        self.call("GET", f"{BASE}/api/v1/openapi.json")

    def relog(self) -> None:
        self.call("POST", "/auth/logout")
        self.log_in()


def worker_rss(master: int) -> dict[int, int]:
    """Resident memory (KiB) of each of gunicorn's workers."""
    sizes = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != master:
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes[int(stat.parent.name)] = int(line.split()[1])
    return sizes


def main() -> None:
    """Run the soak and print its report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline")
    args = parser.parse_args()
    admin = admin_url()
    name, database_url = create_database(admin, prefix="parley_soak")
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []
    try:
        migrate(database_url)
        seed(database_url, SCALES["small"], log=False)
        env = production_env(database_url, RATELIMIT_ENABLED="false", LOG_LEVEL="WARNING")
        server = start_server(env, PORT)
        try:

            def run_client(number: int) -> None:
                client = Client(number, statuses, lock)
                try:
                    client.sign_up()
                    while not stop.is_set():
                        client.step()
                except Exception as error:  # a client crash is a finding, not noise
                    failures.append(f"client {number}: {error!r}")

            threads = [threading.Thread(target=run_client, args=(n,)) for n in range(args.clients)]
            for thread in threads:
                thread.start()
            started = time.monotonic()
            samples: list[tuple[float, dict[int, int]]] = []
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(5)
                samples.append((time.monotonic() - started, worker_rss(server.pid)))
            stop.set()
            for thread in threads:
                thread.join(60)
        finally:
            stop_server(server)
    finally:
        drop_database(admin, name)

    total = sum(statuses.values())
    errors = sum(n for status, n in statuses.items() if status >= 500)
    baseline = [s for t, s in samples if t >= args.warmup][:3]
    final = samples[-3:]
    print(f"\nSoak: {args.minutes:g} min, {args.clients} clients, {total:,} requests")
    print("requests by status: " + ", ".join(f"{s}: {n:,}" for s, n in sorted(statuses.items())))
    print(f"5xx: {errors}")
    growths = []
    print("\n| worker | RSS after warm-up MiB | RSS at end MiB | growth |")
    print("|---|---:|---:|---:|")
    for pid in sorted(final[-1][1]):
        before = statistics.median(s[pid] for s in baseline if pid in s) / 1024
        after = statistics.median(s[pid] for _, s in final if pid in s) / 1024
        growth = 100 * (after - before) / before
        growths.append(growth)
        print(f"| {pid} | {before:.1f} | {after:.1f} | {growth:+.1f} % |")
    for failure in failures:
        print(failure)
    if errors or failures or any(g >= 10 for g in growths):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
