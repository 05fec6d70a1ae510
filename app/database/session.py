"""The request session: reads without a transaction on PostgreSQL, writes in one.

On PostgreSQL, a read outside :func:`app.database.connection.transactional` runs on a connection in
autocommit mode. Each statement then sees the latest committed data, exactly as it would inside a
READ COMMITTED transaction (PostgreSQL takes a new snapshot per statement there too), but the
request saves the ``BEGIN`` and ``ROLLBACK`` round trips. Writes run inside ``transactional``,
which marks the context as writing; the session then takes an ordinary transactional connection.
SQLite keeps its transactions (see :mod:`app.database.connection`).

Only requests read in autocommit mode. Anywhere else (``flask shell``, commands, scripts) the
session is SQLAlchemy's usual one on both databases: what it writes waits for ``commit()`` and
can be rolled back, statement by statement never commits by itself.
"""

from __future__ import annotations

import weakref
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from flask import has_request_context
from flask_sqlalchemy.session import Session

#: True while a ``transactional`` function runs: the session must use a real transaction.
writing: ContextVar[bool] = ContextVar("parley_writing", default=False)

_autocommit: weakref.WeakKeyDictionary[sa.Engine, sa.Engine] = weakref.WeakKeyDictionary()


def autocommit_view(engine: sa.Engine) -> sa.Engine:
    """Return the same engine and pool, handing out connections in autocommit mode."""
    view = _autocommit.get(engine)
    if view is None:
        view = _autocommit[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return view


class ParleySession(Session):
    """Flask-SQLAlchemy's session, choosing the autocommit view of the engine for reads."""

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: sa.Engine | sa.Connection | None = None,
        **kwargs: Any,
    ) -> sa.Engine | sa.Connection:
        """Parley has one database: its engine, or that engine's autocommit view for reads."""
        if bind is not None:
            return bind
        engine = self._db.engine
        if writing.get() or engine.dialect.name != "postgresql" or not has_request_context():
            return engine
        return autocommit_view(engine)
