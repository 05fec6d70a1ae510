"""Handlers for errors no route should raise, proven with routes that raise them."""

from __future__ import annotations

import pytest
import sqlalchemy.exc as sa_exc
from flask import Flask, abort
from marshmallow import ValidationError

from app.database import db
from tests.helpers import assert_problem


@pytest.fixture
def raising_app(app: Flask) -> Flask:
    def integrity() -> None:
        raise sa_exc.IntegrityError("INSERT ...", {}, Exception("duplicate key"))

    def validation() -> None:
        raise ValidationError({"field": ["bad"]})

    def validation_list() -> None:
        raise ValidationError(["bad"])

    def explicit_500() -> None:
        abort(500)

    def locked() -> None:
        raise sa_exc.OperationalError("UPDATE ...", {}, Exception("database is locked"))

    for name, view in [
        ("integrity", integrity),
        ("validation", validation),
        ("validation_list", validation_list),
        ("explicit_500", explicit_500),
        ("locked", locked),
    ]:
        app.add_url_rule(f"/raise/{name}", name, view)
    return app


def test_integrity_error_is_409(raising_app: Flask) -> None:
    assert_problem(raising_app.test_client().get("/raise/integrity"), 409, "conflict")


def test_stray_validation_error_is_422(raising_app: Flask) -> None:
    client = raising_app.test_client()
    assert assert_problem(client.get("/raise/validation"), 422)["errors"] == {
        "json": {"field": ["bad"]}
    }
    assert assert_problem(client.get("/raise/validation_list"), 422)["errors"] == {
        "json": {"_schema": ["bad"]}
    }


def test_abort_500_is_an_internal_error(raising_app: Flask) -> None:
    assert_problem(raising_app.test_client().get("/raise/explicit_500"), 500, "internal_error")


def test_locked_database_is_503(raising_app: Flask) -> None:
    response = raising_app.test_client().get("/raise/locked")
    assert_problem(response, 503, "service_unavailable")
    assert response.headers["Retry-After"] == "1"


def test_500_still_answers_when_rollback_fails(
    raising_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_rollback() -> None:
        raise RuntimeError("connection lost")

    with raising_app.app_context():
        monkeypatch.setattr(db.session, "rollback", broken_rollback)
        response = raising_app.test_client().get("/raise/explicit_500")
    assert_problem(response, 500, "internal_error")


def test_json_endpoint_without_a_body(app: Flask) -> None:
    body = assert_problem(app.test_client().post("/api/v1/auth/register"), 422)
    assert set(body["errors"]["json"]) == {"email", "username", "password"}
