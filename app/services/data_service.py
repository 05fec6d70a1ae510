"""Move a whole Parley database: SQLite to PostgreSQL and back, or through a portable archive.

Every path refuses to write into a target that is not migrated to the source's revision, or that
already holds data (unless forced, which empties it first); copies all tables in foreign-key
order, in primary-key batches, in one target transaction; resets PostgreSQL's id sequences; and
ends by comparing each table's row count and content checksum on both sides.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from app.core.errors import AppError
from app.crud import data_crud
from app.database import db
from app.database.base import UTCDateTime
from app.database.connection import make_engine

FORMAT = "parley-export"
FORMAT_VERSION = 1

#: Called as batches move: (table, rows in this batch, rows in the table).
Progress = Callable[[str, int, int], None]


class DataMoveError(AppError):
    """A transfer or import was refused, or its verification failed."""

    status_code = 409
    code = "conflict"


@dataclass
class TableCheck:
    """One table's figures on both sides after a move."""

    name: str
    source_rows: int
    target_rows: int
    source_sha256: str
    target_sha256: str

    @property
    def ok(self) -> bool:
        """Whether both sides hold the same rows."""
        return (self.source_rows, self.source_sha256) == (self.target_rows, self.target_sha256)


def tables() -> list[sa.Table]:
    """Every Parley table, parents before children."""
    return list(db.metadata.sorted_tables)


def _check_target(conn: sa.Connection, revision: str | None, force: bool) -> None:
    target_revision = data_crud.revision(conn)
    if target_revision is None:
        raise DataMoveError("The target is not migrated: run `flask db upgrade` on it first.")
    if target_revision != revision:
        raise DataMoveError(
            f"The target is at revision {target_revision}, the source at {revision}: "
            "migrate both to the same revision first."
        )
    missing = data_crud.missing_tables(conn, tables())
    if missing:  # pragma: no cover - a migrated database has every table of its revision
        raise DataMoveError(f"The target lacks tables: {', '.join(missing)}.")
    if not force and any(data_crud.row_count(conn, t) for t in tables()):
        raise DataMoveError("The target already holds data; use --force to replace it.")


def _verify(
    source: dict[str, tuple[int, str]], target_conn: sa.Connection, batch: int
) -> list[TableCheck]:
    checks = []
    for table in tables():
        rows, digest = data_crud.table_checksum(target_conn, table, batch)
        checks.append(
            TableCheck(table.name, *source[table.name][:1], rows, source[table.name][1], digest)
        )
    return checks


def transfer(
    source_url: str,
    target_url: str,
    *,
    force: bool = False,
    batch: int = 5000,
    progress: Progress | None = None,
) -> list[TableCheck]:
    """Copy every table from one database to another and verify the copy."""
    source, target = make_engine(source_url), make_engine(target_url)
    try:
        with source.connect() as src:
            revision = data_crud.revision(src)
            if revision is None:
                raise DataMoveError("The source is not a migrated Parley database.")
            with target.connect() as check:
                _check_target(check, revision, force)
            with target.begin() as dst:
                if force:
                    data_crud.delete_all(dst, tables())
                for table in tables():
                    total = data_crud.row_count(src, table)
                    for rows in data_crud.batches(src, table, batch):
                        data_crud.insert_rows(dst, table, rows)
                        if progress:
                            progress(table.name, len(rows), total)
                data_crud.reset_sequences(dst, tables())
            expected = {t.name: data_crud.table_checksum(src, t, batch) for t in tables()}
        with target.connect() as dst:
            checks = _verify(expected, dst, batch)
    finally:
        source.dispose()
        target.dispose()
    return checks


def export_archive(
    database_url: str, path: Path, *, batch: int = 5000, progress: Progress | None = None
) -> dict[str, int]:
    """Write a gzipped JSON-lines archive of every table; return the row count per table."""
    engine = make_engine(database_url)
    counts: dict[str, int] = {}
    try:
        with engine.connect() as conn, gzip.open(path, "wt", encoding="utf-8") as out:
            revision = data_crud.revision(conn)
            if revision is None:
                raise DataMoveError("The database is not a migrated Parley database.")
            totals = {t.name: data_crud.row_count(conn, t) for t in tables()}
            header = {"format": FORMAT, "version": FORMAT_VERSION, "revision": revision}
            _write(out, {**header, "tables": totals})
            for table in tables():
                columns = [c.name for c in table.columns]
                _write(out, {"table": table.name, "columns": columns})
                digest, count = hashlib.sha256(), 0
                for rows in data_crud.batches(conn, table, batch):
                    for row in rows:
                        values = [data_crud.portable(row[c]) for c in columns]
                        digest.update(data_crud.row_digest(values))
                        _write(out, values)
                        count += 1
                    if progress:
                        progress(table.name, len(rows), totals[table.name])
                _write(out, {"end": table.name, "rows": count, "sha256": digest.hexdigest()})
                counts[table.name] = count
    finally:
        engine.dispose()
    return counts


def _write(out: IO[str], item: Any) -> None:
    out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")


def _read(path: Path) -> Iterator[Any]:
    with gzip.open(path, "rt", encoding="utf-8") as source:
        for line in source:
            yield json.loads(line)


def import_archive(
    database_url: str,
    path: Path,
    *,
    force: bool = False,
    batch: int = 5000,
    progress: Progress | None = None,
) -> list[TableCheck]:
    """Load an archive made by :func:`export_archive` into a migrated database and verify it."""
    items = _read(path)
    header = next(items, None)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DataMoveError("Not a Parley export archive.")
    if header.get("version") != FORMAT_VERSION:
        raise DataMoveError(f"Unsupported archive version {header.get('version')}.")
    by_name = {t.name: t for t in tables()}
    totals: dict[str, int] = dict(header.get("tables") or {})
    engine = make_engine(database_url)
    expected: dict[str, tuple[int, str]] = {}
    try:
        with engine.connect() as check:
            _check_target(check, header["revision"], force)
        with engine.begin() as conn:
            if force:
                data_crud.delete_all(conn, tables())
            table: sa.Table | None = None
            columns: list[str] = []
            pending: list[dict[str, Any]] = []
            digest = hashlib.sha256()
            for item in items:
                if isinstance(item, list):
                    digest.update(data_crud.row_digest(item))
                    pending.append(_from_portable(table, columns, item))  # type: ignore[arg-type]
                    if len(pending) >= batch:
                        _flush(conn, table, pending, progress, totals)  # type: ignore[arg-type]
                elif "table" in item:
                    table, columns, digest = (
                        by_name[item["table"]],
                        item["columns"],
                        hashlib.sha256(),
                    )
                elif "end" in item:
                    _flush(conn, table, pending, progress, totals)  # type: ignore[arg-type]
                    if digest.hexdigest() != item["sha256"]:
                        raise DataMoveError(
                            f"The archive is damaged: {item['end']} does not match its checksum."
                        )
                    expected[item["end"]] = (item["rows"], item["sha256"])
            data_crud.reset_sequences(conn, tables())
        missing = [t.name for t in tables() if t.name not in expected]
        if missing:
            raise DataMoveError(f"The archive is incomplete: no data for {', '.join(missing)}.")
        with engine.connect() as conn:
            return _verify(expected, conn, batch)
    finally:
        engine.dispose()


def _flush(
    conn: sa.Connection,
    table: sa.Table,
    pending: list[dict[str, Any]],
    progress: Progress | None,
    totals: dict[str, int],
) -> None:
    if pending:
        data_crud.insert_rows(conn, table, pending)
        if progress:
            progress(table.name, len(pending), totals.get(table.name, 0))
        pending.clear()


def _from_portable(table: sa.Table, columns: list[str], values: list[Any]) -> dict[str, Any]:
    row = {}
    for name, value in zip(columns, values, strict=True):
        if value is not None and isinstance(table.c[name].type, UTCDateTime | sa.DateTime):
            value = datetime.fromisoformat(value)
        row[name] = value
    return row
