"""Reads without a transaction on PostgreSQL, writes in one, and the guard on stray writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.database import db
from app.database.base import UTCDateTime
from app.database.connection import transactional
from app.models.user_models import User
from tests.factories import UserFactory


def _autocommit() -> bool:
    return bool(db.session.connection().connection.driver_connection.autocommit)


def test_reads_run_in_autocommit_and_writes_in_a_transaction(app: Flask, is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("SQLite keeps its own BEGIN for reads (see app.database.connection)")

    @transactional
    def inside() -> tuple[bool, bool]:
        return _autocommit(), db.session().in_transaction()

    with app.test_request_context():
        assert _autocommit()  # a read: no BEGIN, no ROLLBACK
        assert inside() == (False, True)
        assert _autocommit()  # back to reading after the commit


def test_a_write_rolled_back_by_an_error_leaves_nothing(app: Flask, users: UserFactory) -> None:
    alice = users.create("alice", login=False)

    @transactional
    def rename_then_fail() -> None:
        db.session.execute(sa.update(User).where(User.id == alice.id).values(display_name="X"))
        raise ValueError("boom")

    with app.test_request_context():
        with pytest.raises(ValueError):
            rename_then_fail()
        name = db.session.execute(sa.select(User.display_name).where(User.id == alice.id))
        assert name.scalar_one() != "X"


@pytest.mark.parametrize(
    "statement",
    [
        sa.update(User).values(display_name="X"),
        sa.delete(User).where(User.id == -1),
        sa.select(User.id).with_for_update(),
    ],
    ids=["update", "delete", "select-for-update"],
)
def test_a_request_cannot_write_outside_a_transaction(
    app: Flask, statement: Any, is_postgres: bool
) -> None:
    if not is_postgres and isinstance(statement, sa.Select):
        pytest.skip("SQLite has no row locks: FOR UPDATE is not rendered")
    with app.test_request_context():
        with pytest.raises(RuntimeError, match="outside @transactional"):
            db.session.execute(statement)
        db.session.rollback()

        @transactional
        def inside() -> None:
            db.session.execute(statement)

        inside()  # the same statement is fine inside a transaction


def test_postgresql_connections_use_generic_plans(app: Flask, is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("a PostgreSQL setting")
    with app.app_context():
        mode = db.session.execute(sa.text("SHOW plan_cache_mode")).scalar()
    assert mode == "force_generic_plan"


def test_timestamps_come_back_in_utc_whatever_the_server_zone(app: Flask) -> None:
    # PostgreSQL sessions run in UTC (the server's own zone may differ), and UTCDateTime hands
    # their values over as they come; SQLite's naive values get UTC attached.
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            assert db.session.execute(sa.text("SHOW TIME ZONE")).scalar() == "UTC"
        moment = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5)))
        read = db.session.execute(sa.select(sa.literal(moment, UTCDateTime))).scalar_one()
    assert read == moment
    assert read.tzinfo is UTC
    assert read.isoformat() == "2026-03-28T20:30:15.123456+00:00"
