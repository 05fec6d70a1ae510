"""Time and peak memory of `flask data transfer` on the benchmark data sets.

Seeds a PostgreSQL database (``bench_seed.py``), transfers it to a fresh SQLite file, then that
file to a fresh PostgreSQL database, each in its own process whose peak resident memory is read
from the kernel (``wait4``). Runs the small and the large data set, and the large one with
several batch sizes, to show that memory follows the batch size and not the amount of data.

    python scripts/bench_transfer.py [--scales small,large] [--batch-sizes 1000,5000,20000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import ROOT, admin_url, create_database, drop_database, migrate, production_env
from bench_seed import SCALES, seed


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``command``; return its wall time in s, its peak RSS in MiB, and its output."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return time.monotonic() - started, usage.ru_maxrss / 1024, output


def transfer(source: str, target: str, batch_size: int) -> tuple[float, float, str]:
    """Run ``flask data transfer`` between two URLs in a process of its own."""
    command = [
        sys.executable,
        "-m",
        "flask",
        "data",
        "transfer",
        "--source",
        source,
        "--target",
        target,
        "--batch-size",
        str(batch_size),
    ]
    return timed(command, production_env(source))


def main() -> None:
    """Seed, transfer both ways, and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="small,large")
    parser.add_argument("--batch-sizes", default="1000,5000,20000")
    args = parser.parse_args()
    admin = admin_url()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    rows: list[str] = []
    for scale_name in args.scales.split(","):
        scale = SCALES[scale_name]
        source_name, source = create_database(admin)
        created = [source_name]
        try:
            migrate(source)
            seed(source, scale)
            sizes = batch_sizes if scale_name == "large" else [5000]
            for batch in sizes:
                with tempfile.TemporaryDirectory() as scratch:
                    sqlite_url = f"sqlite:///{Path(scratch) / 'parley.db'}"
                    migrate(sqlite_url)
                    out_s, out_mib, report = transfer(source, sqlite_url, batch)
                    back_name, back = create_database(admin)
                    created.append(back_name)
                    migrate(back)
                    in_s, in_mib, _ = transfer(sqlite_url, back, batch)
                    rows.append(
                        f"| {scale_name} | {scale.messages:,} | {batch:,} | PostgreSQL -> SQLite "
                        f"| {out_s:.0f} | {out_mib:.0f} |"
                    )
                    rows.append(
                        f"| {scale_name} | {scale.messages:,} | {batch:,} | SQLite -> PostgreSQL "
                        f"| {in_s:.0f} | {in_mib:.0f} |"
                    )
                    print(report.strip().splitlines()[-1], flush=True)
        finally:
            for name in created:
                drop_database(admin, name)
    print("\n| data set | messages | batch size | direction | seconds | peak RSS MiB |")
    print("|---|---:|---:|---|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
