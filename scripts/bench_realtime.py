"""Real time at scale: 10,000 open event streams on the production command.

Starts gunicorn with the production configuration (2 gevent workers on PostgreSQL) and a private
Redis, registers 2,000 listeners and one sender, and, from one asyncio process that raises its
own file-descriptor limit:

1. times ``GET /users/me`` (4 keep-alive connections) with no stream open;
2. opens 5 streams for each of the 2,000 users, all at once, and counts any refused or dropped;
3. times ``GET /users/me`` again while the 10,000 streams are open, and the workers' RSS growth;
4. sends direct messages to listeners one by one: sender's ``201`` to the listener's event line;
5. sends messages into a 1,000-member group: when the last of its members' 4,995 streams has it;
6. stops Redis and counts the database's transactions per second while the 10,000 listeners
   wait (the per-process poller), then again with 100 listeners.

    python scripts/bench_realtime.py [--users 2000] [--streams 5] [--group 1000] [--dms 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import time
from collections import Counter
from typing import Any

import psycopg
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
HOST, PORT, REDIS_PORT = "127.0.0.1", 8790, 6391


async def call(
    method: str, path: str, token: str = "", body: Any = None, conn: Any = None
) -> tuple[int, Any]:
    """One HTTP/1.1 request; on ``conn`` (reader, writer) kept alive, else on a new connection."""
    reader, writer = conn or await asyncio.open_connection(HOST, PORT)
    data = json.dumps(body).encode() if body is not None else b""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    writer.write(
        f"{method} /api/v1{path} HTTP/1.1\r\nHost: {HOST}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    length = next(
        (
            int(line.split(":")[1])
            for line in head.split("\r\n")
            if line.lower().startswith("content-length:")
        ),
        0,
    )
    payload = await reader.readexactly(length)
    if conn is None:
        writer.close()
    return int(head.split(" ")[1]), json.loads(payload) if payload else None


class Awaited:
    """The listeners each tagged message has still to reach: arrivals count down, nobody polls.

    (Polling thousands of listeners every few milliseconds would take the client's core from
    the very reads it times.)
    """

    def __init__(self) -> None:
        self.waiting: dict[str, tuple[set[Listener], asyncio.Event]] = {}

    def expect(self, tag: str, listeners: list[Listener]) -> asyncio.Event:
        """Return an event set once every listener still open has the message ``tag``."""
        left = {listener for listener in listeners if not listener.dropped}
        done = asyncio.Event()
        self.waiting[tag] = (left, done)
        if not left:
            done.set()
        return done

    def forget(self, listener: Listener, tag: str | None = None) -> None:
        """The listener has ``tag`` (or, with None, it dropped: it waits for nothing)."""
        for waited, (left, done) in self.waiting.items():
            if tag is None or waited == tag:
                left.discard(listener)
                if not left:
                    done.set()


AWAITED = Awaited()


class Listener:
    """One open event stream: when each tagged message reached it."""

    def __init__(self, token: str) -> None:
        self.token, self.open, self.dropped = token, asyncio.Event(), False
        self.error = ""  # why it dropped: the status line, or the connection's end
        self.arrived: dict[str, float] = {}
        self.closing = False
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        try:
            reader, writer = await asyncio.open_connection(HOST, PORT)
            writer.write(
                f"GET /api/v1/events/stream HTTP/1.0\r\nHost: {HOST}\r\n"
                f"Authorization: Bearer {self.token}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
            self.open.set()
            while line := await reader.readline():
                if line.startswith(b'data: {"cursor"') and b"message.created" in line:
                    body = json.loads(line[6:])["data"]["body"]
                    self.arrived.setdefault(body, time.monotonic())
                    AWAITED.forget(self, body)
            self.error = "closed by the server"
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
            self.error = str(exc) or type(exc).__name__
        if not self.closing:
            self.dropped = True
            self.open.set()
            AWAITED.forget(self)

    def close(self) -> None:
        self.closing = True
        if self.task is not None:
            self.task.cancel()


def workers_rss_kib(master: int) -> int:
    """The summed RSS of gunicorn's workers, in KiB."""
    out = subprocess.run(
        ["ps", "--ppid", str(master), "-o", "rss="], capture_output=True, text=True
    )
    return sum(int(v) for v in out.stdout.split())


async def timed_me(token: str, requests: int = 1000, connections: int = 4) -> dict[str, float]:
    """p50/p99 of GET /users/me over a few keep-alive connections, and its errors."""
    latencies: list[float] = []
    errors = 0

    async def one_connection(n: int) -> None:
        nonlocal errors
        conn = await asyncio.open_connection(HOST, PORT)
        for _ in range(n):
            started = time.perf_counter()
            status, _ = await call("GET", "/users/me", token, conn=conn)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += status != 200
        conn[1].close()

    await asyncio.gather(*(one_connection(requests // connections) for _ in range(connections)))
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "errors": errors}


def transactions(database: str) -> int:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


async def statements_per_second(database: str, seconds: float = 10.0) -> float:
    before = transactions(database)
    await asyncio.sleep(seconds)
    return (transactions(database) - before - 1) / seconds  # minus this probe's own


async def bench(
    args: argparse.Namespace, master: int, redis: subprocess.Popen[bytes], db: str
) -> dict[str, Any]:
    limit = asyncio.Semaphore(50)

    async def account(name: str) -> tuple[int, str]:
        async with limit:
            await call(
                "POST",
                "/auth/register",
                body={"email": f"{name}@bench.io", "username": name, "password": PASSWORD},
            )
            _, tokens = await call(
                "POST", "/auth/login", body={"login": name, "password": PASSWORD}
            )
            _, me = await call("GET", "/users/me", tokens["access_token"])
            return int(me["id"]), str(tokens["access_token"])

    started = time.monotonic()
    sender_id, sender = await account("rt_sender")
    people = await asyncio.gather(*(account(f"rt_{i}") for i in range(args.users)))
    members = [uid for uid, _ in people[: args.group - 1]]
    _, group = await call(
        "POST",
        "/conversations",
        sender,
        {"kind": "group", "title": "big", "member_ids": members[:500]},
    )
    for start in range(500, len(members), 500):
        added = time.monotonic()
        status, body = await call(
            "POST",
            f"/conversations/{group['id']}/members",
            sender,
            {"user_ids": members[start : start + 500]},
        )
        assert status == 200, (status, body)
        took = time.monotonic() - added
        print(f"  added {len(members[start : start + 500])} members to the group: {took:.1f} s")
    dm_people = people[args.group - 1 : args.group - 1 + args.dms]
    dms = [
        (await call("POST", "/conversations", sender, {"kind": "direct", "member_ids": [uid]}))[1][
            "id"
        ]
        for uid, _ in dm_people
    ]
    took = time.monotonic() - started
    print(f"  setup: {len(people) + 1} accounts, group {args.group}, {len(dms)} DMs: {took:.0f} s")

    result: dict[str, Any] = {"me_idle": await timed_me(sender)}
    rss_before = workers_rss_kib(master)
    listeners = {uid: [Listener(token) for _ in range(args.streams)] for uid, token in people}
    every = [listener for group_ in listeners.values() for listener in group_]
    started = time.monotonic()
    opening = asyncio.Semaphore(1000)

    async def open_one(listener: Listener) -> None:
        async with opening:
            listener.task = asyncio.create_task(listener.run())
            await listener.open.wait()

    await asyncio.gather(*(open_one(listener) for listener in every))
    result["open_seconds"] = time.monotonic() - started
    await asyncio.sleep(5)  # presence announcements and keep-alives settle
    result["streams"] = sum(not listener.dropped for listener in every)
    why = Counter(listener.error for listener in every if listener.dropped)
    print(f"  {result['streams']:,} streams open in {result['open_seconds']:.1f} s {dict(why)}")
    result["me_streams"] = await timed_me(sender)
    result["rss_per_stream_kib"] = (workers_rss_kib(master) - rss_before) / len(every)

    async def deliveries(conversation: int, tag: str, to: list[Listener]) -> list[float]:
        everyone = AWAITED.expect(tag, to)  # before the send: an event may beat the 201
        _, _ = await call("POST", f"/conversations/{conversation}/messages", sender, {"body": tag})
        acked = time.monotonic()
        try:
            await asyncio.wait_for(everyone.wait(), 10)
        except TimeoutError:
            pass  # the missing ones count as lost
        return [max(listener.arrived.get(tag, float("inf")) - acked, 0) * 1000 for listener in to]

    dm_ms: list[float] = []
    for i, (conversation, (uid, _)) in enumerate(zip(dms, dm_people, strict=True)):
        dm_ms += await deliveries(conversation, f"dm {i}", listeners[uid])
    result["dm"] = {
        "p50": percentile(dm_ms, 50),
        "p99": percentile(dm_ms, 99),
        "lost": dm_ms.count(float("inf")),
        "n": len(dm_ms),
    }
    group_last, group_reached = [], []
    group_listeners = [listener for uid in members for listener in listeners[uid]]
    for i in range(args.group_messages):
        times = await deliveries(group["id"], f"group {i}", group_listeners)
        group_last.append(max(times))
        group_reached.append(len(times) - times.count(float("inf")))
        await asyncio.sleep(1)
    result["group_last_ms"] = group_last
    result["group_reached"] = group_reached
    result["group_streams"] = len(group_listeners)

    redis.terminate()
    redis.wait(10)
    await asyncio.sleep(8)  # every process notices and falls back to polling the database
    result["sql_10000"] = await statements_per_second(db)
    for listener in every[100:]:
        listener.close()
    await asyncio.sleep(5)
    result["sql_100"] = await statements_per_second(db)
    result["dropped"] = sum(listener.dropped for listener in every)
    for listener in every[:100]:
        listener.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=5, help="streams per user")
    parser.add_argument("--group", type=int, default=1000, help="members of the big group")
    parser.add_argument("--dms", type=int, default=200)
    parser.add_argument("--group-messages", type=int, default=5)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.users * args.streams + 2048
    if hard != resource.RLIM_INFINITY and hard < need:
        raise SystemExit(f"needs {need} file descriptors (ulimit -Hn is {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))  # the server inherits it
    admin = admin_url()
    name, url = create_database(admin, "parley_bench_rt")
    redis = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(REDIS_PORT),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    server = None
    try:
        migrate(url)
        env = production_env(
            url,
            REDIS_URL=f"redis://{HOST}:{REDIS_PORT}/0",
            PASSWORD_HASH_METHOD="scrypt:1024:8:1",  # setup speed; logins are not measured here
            RATELIMIT_ENABLED="false",
            GUNICORN_GRACEFUL_TIMEOUT="5",
        )
        server = start_server(env, PORT)
        result = asyncio.run(bench(args, server.pid, redis, name))
    finally:
        if server is not None:
            stop_server(server)
        redis.terminate()
        drop_database(admin, name)
    report(result, args)


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    total = args.users * args.streams
    dm, idle, busy = r["dm"], r["me_idle"], r["me_streams"]
    rows = [
        (
            f"streams open at once ({args.users:,} users × {args.streams})",
            f"{r['streams']:,} / {total:,} in {r['open_seconds']:.1f} s, {r['dropped']} dropped",
        ),
        *(
            (
                f"`GET /users/me`, {label}",
                f"p50 {m['p50']:.2f} ms, p99 {m['p99']:.2f} ms, {m['errors']} errors",
            )
            for label, m in (("no streams", idle), (f"{total:,} streams open", busy))
        ),
        ("`GET /users/me` p99, streams open / none", f"{busy['p99'] / idle['p99']:.2f}×"),
        (
            f"direct message, `201` → listener's event line ({dm['n']} deliveries)",
            f"p50 {dm['p50']:.1f} ms, p99 {dm['p99']:.1f} ms, {dm['lost']} lost",
        ),
        (
            f"{args.group:,}-member group, last of its {r['group_streams']:,} streams",
            ", ".join(
                f"{v:.0f} ms" + (f" ({n:,} reached)" if n < r["group_streams"] else "")
                for v, n in zip(r["group_last_ms"], r["group_reached"], strict=True)
            ),
        ),
        ("worker RSS per idle stream", f"{r['rss_per_stream_kib']:.1f} KiB"),
        (f"database transactions/s, Redis down, {total:,} listeners", f"{r['sql_10000']:.1f}"),
        ("database transactions/s, Redis down, 100 listeners", f"{r['sql_100']:.1f}"),
    ]
    print("\n| measure | result |\n|---|---|")
    for measure, value in rows:
        print(f"| {measure} | {value} |")


if __name__ == "__main__":
    main()
