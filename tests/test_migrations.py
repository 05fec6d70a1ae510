"""One Alembic history that upgrades, downgrades and matches the models, on both databases."""

from __future__ import annotations

import flask_migrate
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from app.database import db


def _tables(app: Flask) -> set[str]:
    with app.app_context():
        return set(sa.inspect(db.engine).get_table_names())


def test_downgrade_to_base_and_upgrade_again(app: Flask) -> None:
    with app.app_context():
        flask_migrate.downgrade(revision="base")
        db.engine.dispose()
    assert _tables(app) - {"alembic_version"} == set()
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    assert {
        "users",
        "auth_sessions",
        "refresh_tokens",
        "conversations",
        "conversation_members",
        "messages",
    } <= _tables(app)


def test_models_and_migrations_do_not_drift(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []
