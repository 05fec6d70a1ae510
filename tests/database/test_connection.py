"""Session teardown when the database connection died during the request."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.database import connection, db
from app.database.connection import release_session
from tests.factories import UserFactory


class DeadConnection(Exception):
    """Stands in for the driver's error."""


def test_a_failing_rollback_discards_the_session(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with app.app_context():
        broken = db.session()

        def close_fails() -> None:
            raise sa.exc.OperationalError("ROLLBACK", {}, DeadConnection("server closed"))

        monkeypatch.setattr(broken, "close", close_fails)
        logger = logging.getLogger("parley")
        logger.addHandler(caplog.handler)
        try:
            release_session()
        finally:
            logger.removeHandler(caplog.handler)
        assert db.session() is not broken  # the next use gets a fresh session
        assert db.session.execute(sa.select(1)).scalar() == 1
        assert "server closed" in caplog.text


def test_a_healthy_session_is_simply_removed(app: Flask) -> None:
    with app.app_context():
        first = db.session()
        release_session()
        assert db.session() is not first


def _pooled_backend_pid(app: Flask) -> int:
    """The PostgreSQL backend of the connection the pool will hand out next."""
    with app.app_context():
        pid = int(db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        release_session()
    return pid


def _terminate(database_url: str, pid: int) -> None:
    import psycopg

    url = sa.make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_an_idle_connection_that_died_is_replaced_before_use(
    app: Flask,
    client: FlaskClient,
    users: UserFactory,
    database_url: str,
    is_postgres: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not is_postgres:
        pytest.skip("no server connection to lose with SQLite")
    alice = users.create("alice")
    pid = _pooled_backend_pid(app)
    _terminate(database_url, pid)  # as a database restart or a firewall would
    monkeypatch.setattr(connection, "PING_AFTER_IDLE_SECONDS", 0.0)  # it counts as idle
    response = client.get("/api/v1/users/me", headers=alice.headers)
    assert response.status_code == 200
    assert _pooled_backend_pid(app) != pid


def test_a_busy_connection_is_not_pinged(
    app: Flask,
    client: FlaskClient,
    users: UserFactory,
    is_postgres: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not is_postgres:
        pytest.skip("SQLite connections are not pinged")
    alice = users.create("alice")
    with app.app_context():
        dialect = db.engine.dialect
    pings: list[object] = []
    real_ping = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda conn: pings.append(conn) or real_ping(conn))
    for _ in range(3):
        assert client.get("/api/v1/users/me", headers=alice.headers).status_code == 200
    assert pings == []  # used moments ago: no extra round trip
    monkeypatch.setattr(connection, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert client.get("/api/v1/users/me", headers=alice.headers).status_code == 200
    assert len(pings) == 1


def test_a_busy_connection_that_died_fails_once_then_recovers(
    app: Flask, client: FlaskClient, users: UserFactory, database_url: str, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("no server connection to lose with SQLite")
    alice = users.create("alice")
    _terminate(database_url, _pooled_backend_pid(app))
    first = client.get("/api/v1/users/me", headers=alice.headers)
    assert first.status_code == 503  # the request that found it dead
    assert first.headers["Retry-After"]
    assert client.get("/api/v1/users/me", headers=alice.headers).status_code == 200
