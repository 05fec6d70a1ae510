"""Fixtures: a migrated test database (SQLite, or PostgreSQL from TEST_DATABASE_URL), an app
per test, and a clean database after every test."""

from __future__ import annotations

import os

os.environ["PARLEY_ENV"] = "testing"  # before config is imported: no .env, testing defaults

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.database import db
from config import TestingConfig, normalize_database_url
from tests.factories import Chat, UserFactory


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database the suite runs on."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return normalize_database_url(url)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'parley-test.db'}"


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    """True when the suite runs on PostgreSQL."""
    return database_url.startswith("postgresql")


def make_app(database_url: str, **overrides: object) -> Flask:
    """Build an app on the test database."""
    return create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=database_url, **overrides)


@pytest.fixture(scope="session")
def _schema(database_url: str) -> None:
    """Migrate the test database from empty to head once (this also tests the migrations)."""
    app = make_app(database_url)
    with app.app_context():
        flask_migrate.downgrade(revision="base")
        flask_migrate.upgrade()
        db.engine.dispose()


def clean_database(app: Flask) -> None:
    """Delete every row (the schema stays), so each test starts from an empty database."""
    with app.app_context():
        tables = [t.name for t in db.metadata.sorted_tables]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for name in reversed(tables):
                    conn.execute(sa.text(f"DELETE FROM {name}"))
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(database_url: str, _schema: None) -> Iterator[Flask]:
    """A fresh app on the migrated test database, emptied after the test."""
    application = make_app(database_url)
    yield application
    clean_database(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def users(app: Flask, client: FlaskClient) -> UserFactory:
    """Create users and log them in through the API."""
    return UserFactory(app, client)


@pytest.fixture
def migrations_dir() -> Path:
    """The Alembic migrations directory."""
    return Path(__file__).resolve().parent.parent / "migrations"


@pytest.fixture
def chat(client: FlaskClient) -> Chat:
    """Drive the conversation endpoints."""
    return Chat(client)


#: Figures the reliability tests measure (acknowledged writes checked, statuses seen), printed
#: at the end of the run so CI logs show them.
_REPORT: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Add a line to the run's closing report."""
    return _REPORT.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the reliability figures after the test results."""
    if _REPORT:
        terminalreporter.section("Parley reliability figures")
        for line in _REPORT:
            terminalreporter.write_line(line)
