"""Readiness: is the database reachable and migrated to the newest revision."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import sqlalchemy.exc as sa_exc
from alembic.script import ScriptDirectory
from flask import current_app

from app.crud import health_crud
from app.database.connection import end_read

log = logging.getLogger("parley.health")


@functools.lru_cache(maxsize=4)
def _migration_heads(directory: str) -> frozenset[str]:
    return frozenset(ScriptDirectory(directory).get_heads())


def migrations_directory() -> str:
    """Where Flask-Migrate keeps the revision scripts."""
    return str(Path(current_app.root_path).parent / "migrations")


def readiness() -> dict[str, str]:
    """Report ``database`` (ok/unreachable) and ``migrations`` (head/behind/...)."""
    try:
        health_crud.ping()
        versions = health_crud.migration_versions()
    except sa_exc.SQLAlchemyError as error:
        log.warning("readiness: database unreachable: %s", error)
        return {"database": "unreachable", "migrations": "unknown"}
    finally:
        end_read()
    heads = _migration_heads(migrations_directory())
    if versions == heads:
        migrations = "head"
    elif not versions:
        migrations = "not_migrated"
    else:
        migrations = "behind"
    return {"database": "ok", "migrations": migrations}
