"""Liveness and readiness probes."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from tests.conftest import make_app
from tests.helpers import assert_problem


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_when_migrated(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "database": "ok", "migrations": "head"}


def test_readyz_when_not_migrated(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'empty.db'}")
    body = assert_problem(app.test_client().get("/readyz"), 503, "service_unavailable")
    assert body["database"] == "ok"
    assert body["migrations"] == "not_migrated"


def test_readyz_when_behind(tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('0000-old')"))
    engine.dispose()
    body = assert_problem(make_app(url).test_client().get("/readyz"), 503)
    assert body["migrations"] == "behind"
