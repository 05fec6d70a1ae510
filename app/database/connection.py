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
import logging
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from flask import Flask, has_request_context
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.database import db
from app.database.session import writing

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("parley.database")


def engine_options(
    database_url: str, sqlite_busy_timeout: int, pool_size: int = 5
) -> dict[str, Any]:
    """Return ``create_engine`` keyword arguments suited to the database behind the URL."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": sqlite_busy_timeout, "check_same_thread": False}}
    return {
        "pool_size": pool_size,
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 5},
    }


def configure_engine(engine: Engine) -> None:
    """Install the per-connection settings an engine needs.

    PostgreSQL: generic plans for prepared statements. psycopg prepares a statement after its
    fifth use; PostgreSQL would still plan some of them again on every execution (the page of
    conversations took longer to plan than to run), while Parley's statements are all keyed
    lookups whose best plan does not depend on the values. And the session time zone UTC:
    timestamps then arrive as datetimes in ``datetime.UTC``, which Parley uses as they come
    (see :class:`app.database.base.UTCDateTime`), whatever the server's own time zone.
    """
    if engine.dialect.name == "postgresql":

        @sa.event.listens_for(engine, "connect")
        def _on_pg_connect(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET plan_cache_mode = force_generic_plan")
                cursor.execute("SET TIME ZONE 'UTC'")
            dbapi_connection.commit()

        ping_idle_connections(engine)
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
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing.get() else "BEGIN")


#: A pooled connection unused for this long is checked with a ping before a request gets it.
PING_AFTER_IDLE_SECONDS = 10.0
_IDLE_SINCE = "parley_idle_since"


def ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use when it sat idle, instead of before every use.

    SQLAlchemy's ``pool_pre_ping`` costs a round trip on every checkout, a third of the round
    trips of a small read. A connection used within the last few seconds is almost surely
    alive; one that sat idle may have been cut (a database restart, a firewall), and is pinged.
    A dead one invalidates the pool and the request gets a fresh connection. If the database
    restarts under load, the requests already using old connections fail with 503 (their error
    invalidates the pool too) and retries get new ones.
    """

    @sa.event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or busy: used moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise sa.exc.InvalidatePoolError() from error
            raise


_WRITES = ("INSERT", "UPDATE", "DELETE")


def guard_writes(engine: Engine) -> None:
    """Fail any write a request makes outside :func:`transactional` (installed when testing).

    On PostgreSQL such a write would run in autocommit mode and could be left half done, so the
    test suite makes it an error on both databases instead.
    """

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _check(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if writing.get() or not has_request_context():
            return
        head = statement.lstrip()[:6].upper()
        if head in _WRITES or "FOR UPDATE" in statement:
            raise RuntimeError(f"write outside @transactional: {statement[:80]!r}")


def end_read() -> None:
    """Say that the request is done with the database for now: the one way to do so.

    Ends the request's read transaction, if any, and hands its connection back to the pool; the
    next statement starts afresh (a new snapshot). Objects already loaded stay attached and
    reload on their next use. For a request about to wait (a long-poll, a send queueing for its
    turn), and before a write transaction starts. Does nothing inside a write transaction.

    The request lifecycle, whole: reads open a transaction (SQLite) or run in autocommit
    (PostgreSQL, see :mod:`app.database.session`) as they come; :func:`transactional` runs a
    service's writes as one transaction; ``end_read`` in between; :func:`release_session` at the
    end of every request.
    """
    session = db.session()
    if writing.get() or not session.in_transaction():
        return
    try:
        session.rollback()  # a read transaction has nothing to keep; this also ends a failed one
    except sa.exc.DBAPIError as error:
        log.warning("discarded a session whose connection failed: %s", error.orig)
        db.session.registry.clear()


def transactional(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a service function as one write transaction: commit on success, roll back on error.

    Any read transaction the request had open (the token check, say) is ended first, so that the
    write transaction starts fresh and, on SQLite, with the write lock.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if writing.get():  # nested call: the outer function owns the transaction
            return fn(*args, **kwargs)
        end_read()
        session = db.session()  # the request's Session behind the scoped proxy
        token = writing.set(True)
        try:
            result = fn(*args, **kwargs)
            session.commit()
            return result
        except BaseException:
            session.rollback()
            raise
        finally:
            writing.reset(token)

    return wrapper


_AFTER_COMMIT = "parley_after_commit"


def after_commit(callback: Callable[[], object]) -> None:
    """Run ``callback`` once the current transaction commits (never if it rolls back).

    For side effects that must not happen for work that did not happen: mail, wake-ups.
    """
    db.session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _run_after_commit(session: Any) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception:  # the data is committed; a failed side effect must not undo the reply
            log.exception("after-commit callback failed")


def _forget_after_rollback(session: Any) -> None:
    for key in [k for k in session.info if str(k).startswith("parley_")]:
        del session.info[key]


_hooks_installed = False


def install_commit_hooks() -> None:
    """Register the after-commit machinery on every SQLAlchemy session (once per process)."""
    global _hooks_installed
    if not _hooks_installed:
        sa.event.listen(Session, "after_commit", _run_after_commit)
        sa.event.listen(Session, "after_rollback", _forget_after_rollback)
        _hooks_installed = True


def make_engine(database_url: str, sqlite_busy_timeout: int = 5) -> Engine:
    """Create an engine for any Parley database URL, set up as the app sets up its own."""
    from config import normalize_database_url

    url = normalize_database_url(database_url)
    engine = sa.create_engine(url, **engine_options(url, sqlite_busy_timeout))
    configure_engine(engine)
    return engine


def release_session(_error: BaseException | None = None) -> None:
    """End the request's session, even when its connection died under it.

    The session's closing ``ROLLBACK`` fails when the database went away during the request
    (a restart, a failover). SQLAlchemy has then already invalidated the connection; what is left
    is to forget the session, so the request still gets its answer (a 503 already rendered, not
    a bare 500 from the teardown) and the next request on this thread starts with a fresh one.
    """
    try:
        db.session.remove()
    except sa.exc.DBAPIError as error:
        log.warning("discarded a session whose connection failed: %s", error.orig)
        db.session.registry.clear()


def init_session_teardown(app: Flask) -> None:
    """Register :func:`release_session`; it runs before Flask-SQLAlchemy's own teardown."""
    app.teardown_appcontext(release_session)
