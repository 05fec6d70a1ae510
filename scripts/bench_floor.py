"""The floors of `make bench`: what Parley's own stack allows before any endpoint's work.

Parley's app under the production configuration, with three routes that do nothing but what
every endpoint of their kind must do, and a fourth that shows what leaving SQLAlchemy out
would buy:

- ``/floor/plain``: Parley's request handling (request id, access line, metrics, security
  headers) around a small JSON object;
- ``/floor/statement``: the same plus one SQL statement (``SELECT 1``) through the request's
  database session, as every endpoint that reads runs its statements;
- ``/floor/authenticated``: the bearer-token check and the session check of ``auth_required``
  (one statement), and nothing else;
- ``/floor/driver``: the answer of ``GET /users/me`` as cheaply as the driver allows: the
  token verified through the same cache, the session check and the account read as two
  prepared psycopg statements on a pooled connection in autocommit mode, the same JSON built
  by hand. A measurement, not an endpoint: a dead session is a bare 401.

An endpoint's share of the ceiling cannot exceed its floor's: ``GET /users/me`` has the
authenticated floor, plus reading the account.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, request

from app import create_app
from app.api.security import auth_required
from app.core.utils import iso_z
from app.database import db
from app.database.base import utcnow
from app.extensions import jwt
from config import ProductionConfig

app = create_app(ProductionConfig)
_ONE = sa.select(sa.literal(1))


@app.get("/floor/plain")
def plain() -> dict[str, str]:
    """Answer with a small JSON object."""
    return {"status": "ok"}


@app.get("/floor/statement")
def statement() -> dict[str, str]:
    """Run ``SELECT 1`` through the request's session, then answer."""
    db.session.execute(_ONE).scalar_one()
    return {"status": "ok"}


@app.get("/floor/authenticated")
@auth_required
def authenticated() -> dict[str, str]:
    """Check the bearer token and its session, then answer."""
    return {"status": "ok"}


_SESSION = (
    "SELECT user_id FROM auth_sessions WHERE id = %s AND revoked_at IS NULL AND expires_at > %s"
)
_ACCOUNT = (
    "SELECT id, username, display_name, created_at, email, is_admin, is_active "
    "FROM users WHERE id = %s"
)


@app.get("/floor/driver")
def driver() -> dict[str, Any]:
    """Answer ``GET /users/me`` with psycopg directly (see the module docstring)."""
    token = request.headers["Authorization"].split()[1]
    claims = jwt._decode_jwt_from_config(token)  # the verification cache of app.library_overrides
    pooled = db.engine.raw_connection()
    connection = pooled.driver_connection
    connection.autocommit = True  # no BEGIN and ROLLBACK, as Parley's reads
    try:
        cursor = connection.cursor()
        session = cursor.execute(_SESSION, (int(claims["sid"]), utcnow()), prepare=True).fetchone()
        row = None
        if session is not None:
            row = cursor.execute(_ACCOUNT, session, prepare=True).fetchone()
    finally:
        connection.autocommit = False
        pooled.close()
    if row is None:
        abort(401)
    keys = ("id", "username", "display_name", "created_at", "email", "is_admin", "is_active")
    account = dict(zip(keys, row, strict=True))
    account["created_at"] = iso_z(account["created_at"])
    return account
