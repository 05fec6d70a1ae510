"""Engine options per backend, and the transaction helper every writing service uses.

SQLite: WAL so readers never block the writer, foreign keys on, and a busy timeout. Python's
``sqlite3`` driver starts transactions lazily and mishandles SAVEPOINT, so Parley turns its
transaction handling off and emits ``BEGIN`` itself: plain ``BEGIN`` for reads, ``BEGIN IMMEDIATE``
inside :func:`transactional`, which takes the write lock up front. A deferred transaction that
upgrades from read to write can fail at once with SQLITE_BUSY; an immediate one waits for the lock
up to the busy timeout instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.database import db

P = ParamSpec("P")
R = TypeVar("R")

_immediate: ContextVar[bool] = ContextVar("parley_sqlite_immediate", default=False)


def engine_options(database_url: str, sqlite_busy_timeout: int) -> dict[str, Any]:
    """Return ``create_engine`` keyword arguments suited to the database behind the URL."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": sqlite_busy_timeout, "check_same_thread": False}}
    return {
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 5},
    }


def configure_engine(engine: Engine) -> None:
    """Install the per-connection settings an engine needs (SQLite only)."""
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # Parley emits BEGIN itself, see module doc
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _immediate.get() else "BEGIN")


def transactional(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a service function as one write transaction: commit on success, roll back on error.

    Any read transaction the request had open (the token check, say) is ended first, so that the
    write transaction starts fresh and, on SQLite, with the write lock.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        session = db.session()  # the request's Session behind the scoped proxy
        if _immediate.get():  # nested call: the outer function owns the transaction
            return fn(*args, **kwargs)
        if session.in_transaction():
            session.commit()
        token = _immediate.set(True)
        try:
            result = fn(*args, **kwargs)
            session.commit()
            return result
        except BaseException:
            session.rollback()
            raise
        finally:
            _immediate.reset(token)

    return wrapper
