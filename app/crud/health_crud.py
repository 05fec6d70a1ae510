"""SQL for the readiness check."""

from __future__ import annotations

import sqlalchemy as sa

from app.database import db


def ping() -> None:
    """Run a trivial query (raises when the database cannot be reached)."""
    db.session.execute(sa.text("SELECT 1"))


def migration_versions() -> set[str]:
    """Return the Alembic revisions the database is at (empty when never migrated)."""
    if not sa.inspect(db.session.connection()).has_table("alembic_version"):
        return set()
    return set(db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
