"""Two versions of Parley side by side: the read scenarios of `make bench`, runs alternating.

Throughput on a shared 2-core machine moves by a tenth between runs, more than most changes do;
figures taken minutes apart cannot tell a 5 % difference. This seeds one *small* database, starts
the production configuration of two checkouts on it (``--before``, another work tree, and
``--after``, this one by default), and runs each read scenario at 32 connections on the two in
turn, ``--rounds`` times, so that both versions meet the same machine. It prints each version's
runs and the change of the medians.

    python scripts/bench_compare.py --before ../parley-before [--rounds 4] [--duration 8]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

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
from bench_http import SCENARIOS, run_wrk
from bench_seed import PASSWORD, SCALES, seed

PORTS = {"before": 8721, "after": 8722}


def start(tree: Path, database_url: str, port: int) -> subprocess.Popen[bytes]:
    """Start the production configuration of the work tree ``tree`` on ``port``."""
    env = production_env(database_url, RATELIMIT_ENABLED="false", REDIS_URL="")
    return start_server({**env, "PYTHONPATH": str(tree)}, port, tree=tree)


def token(port: int, username: str) -> str:
    """Log ``username`` in on the server at ``port``."""
    response = requests.post(
        f"http://127.0.0.1:{port}/api/v1/auth/login",
        json={"login": username, "password": PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def main() -> None:
    """Seed, start both versions, alternate the read scenarios, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the other work tree")
    parser.add_argument("--after", type=Path, default=ROOT)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--admin-url", default=admin_url())
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    name, database_url = create_database(args.admin_url, prefix="parley_compare")
    servers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        migrate(database_url)
        seed(database_url, SCALES["small"], log=False)
        for version, tree in trees.items():
            servers[version] = start(tree, database_url, PORTS[version])
        users = {"heavy": "user1", "light": f"user{SCALES['small'].light_user}"}
        tokens = {
            (version, key): token(PORTS[version], username)
            for version in trees
            for key, username in users.items()
        }
        reads = [s for s in SCENARIOS if s.read and s.method == "GET" and s.user]
        runs: dict[tuple[str, str], list[float]] = {}
        for scenario in reads:
            for _ in range(args.rounds):
                for version in trees:
                    url = f"http://127.0.0.1:{PORTS[version]}{scenario.path}"
                    env = {"PARLEY_TOKEN": tokens[(version, scenario.user)]}
                    result = run_wrk(url, scenario.script, 32, args.duration, env)
                    if result.errors:
                        raise SystemExit(f"{version} {scenario.label}: {result.errors} errors")
                    runs.setdefault((scenario.label, version), []).append(result.rps)
            print(f"  {scenario.label} done", file=sys.stderr)
        rounds = f"{args.rounds} runs"
        print(f"| scenario (32 connections) | before: req/s, {rounds} | after | median change |")
        print("|---|---|---|---:|")
        for scenario in reads:
            before, after = runs[(scenario.label, "before")], runs[(scenario.label, "after")]
            change = statistics.median(after) / statistics.median(before) - 1
            print(
                f"| {scenario.label} | {', '.join(f'{r:,.0f}' for r in before)} "
                f"| {', '.join(f'{r:,.0f}' for r in after)} | {change:+.1%} |"
            )
    finally:
        for server in servers.values():
            stop_server(server)
        drop_database(args.admin_url, name)


if __name__ == "__main__":
    main()
