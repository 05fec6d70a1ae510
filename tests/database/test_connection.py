"""Session teardown when the database connection died during the request."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from flask import Flask

from app.database import db
from app.database.connection import release_session


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
