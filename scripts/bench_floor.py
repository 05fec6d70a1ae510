"""The floors of `make bench`: what Parley's own stack allows before any endpoint's work.

Parley's app under the production configuration, with three routes that do nothing but what
every endpoint of their kind must do:

- ``/floor/plain``: Parley's request handling (request id, access line, metrics, security
  headers) around a small JSON object;
- ``/floor/statement``: the same plus one SQL statement (``SELECT 1``) through the request's
  database session, as every endpoint that reads runs its statements;
- ``/floor/authenticated``: the bearer-token check and the session check of ``auth_required``
  (one statement), and nothing else.

An endpoint's share of the ceiling cannot exceed its floor's: ``GET /users/me`` has the
authenticated floor, plus reading the account.
"""

from __future__ import annotations

import sqlalchemy as sa

from app import create_app
from app.api.security import auth_required
from app.database import db
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
