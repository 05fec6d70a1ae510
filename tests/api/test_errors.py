"""Every error is problem+json with the right status; hostile input never reaches a 500."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.core.logging import JsonFormatter
from app.database import db
from app.models import User
from tests.factories import PASSWORD, UserFactory
from tests.helpers import assert_problem

REGISTER = "/api/v1/auth/register"


def user_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(User)) or 0


class TestWerkzeugErrors:
    def test_unknown_route_is_404(self, client: FlaskClient) -> None:
        assert_problem(client.get("/api/v1/nope"), 404, "not_found")
        assert_problem(client.get("/"), 404, "not_found")

    def test_wrong_method_is_405_with_allow(self, client: FlaskClient) -> None:
        response = client.put(REGISTER, json={})
        assert_problem(response, 405, "method_not_allowed")
        assert "POST" in response.headers["Allow"]

    def test_body_over_64_kib_is_413(self, app: Flask, client: FlaskClient) -> None:
        body = json.dumps({"email": "a@b.co", "username": "abc", "password": "p" * 70_000})
        assert_problem(
            client.post(REGISTER, data=body, content_type="application/json"),
            413,
            "payload_too_large",
        )
        assert user_count(app) == 0


class TestHostileBodies:
    def test_deeply_nested_valid_json_in_a_field(self, app: Flask, client: FlaskClient) -> None:
        nested = "[" * 900 + "]" * 900
        raw = f'{{"email": "a@b.co", "username": {nested}, "password": "{PASSWORD}"}}'
        response = client.post(REGISTER, data=raw, content_type="application/json")
        assert_problem(response, 422, "validation_error")
        assert user_count(app) == 0

    @pytest.mark.parametrize(
        "field,value",
        [
            ("username", "abc\u0000def"),
            ("display_name", "nul\u0000"),
            ("password", "password\u0000password"),
            ("email", "a\u0000@b.co"),
            ("display_name", "\ud800"),
            ("password", "lone \udfff surrogate!"),
            ("display_name", "x" * 10_000),
            ("username", 10**40),
            ("display_name", {"nested": {"deep": [1]}}),
            ("display_name", 1.5),
        ],
    )
    def test_bad_strings_and_types_are_422_and_nothing_stored(
        self, app: Flask, client: FlaskClient, field: str, value: object
    ) -> None:
        body: dict[str, object] = {"email": "a@b.co", "username": "abc", "password": PASSWORD}
        body[field] = value
        response = client.post(REGISTER, data=json.dumps(body), content_type="application/json")
        assert field in assert_problem(response, 422, "validation_error")["errors"]["json"]
        assert user_count(app) == 0

    def test_lone_surrogate_as_raw_json_escape(self, app: Flask, client: FlaskClient) -> None:
        raw = (
            f'{{"email": "a@b.co", "username": "abc", "password": "{PASSWORD}", '
            '"display_name": "\\ud83d"}'
        )
        response = client.post(REGISTER, data=raw, content_type="application/json")
        assert_problem(response, 422, "validation_error")
        assert user_count(app) == 0

    def test_unicode_is_stored_faithfully(self, client: FlaskClient) -> None:
        response = client.post(
            REGISTER,
            json={
                "email": "a@b.co",
                "username": "abc",
                "password": PASSWORD,
                "display_name": "Zoë 🦜 日本",
            },
        )
        assert response.status_code == 201
        assert response.get_json()["display_name"] == "Zoë 🦜 日本"

    @pytest.mark.parametrize(
        "path", ["/api/v1/users/" + "9" * 30, "/api/v1/auth/sessions/" + "1" * 25]
    )
    def test_giant_integers_in_paths(
        self, client: FlaskClient, users: UserFactory, path: str
    ) -> None:
        user = users.create()
        method = client.delete if "sessions" in path else client.get
        assert_problem(method(path, headers=user.headers), 404, "not_found")

    def test_max_64_bit_id_is_a_plain_404(self, client: FlaskClient, users: UserFactory) -> None:
        user = users.create()
        assert_problem(client.get(f"/api/v1/users/{2**63 - 1}", headers=user.headers), 404)


class TestServerErrors:
    def test_unexpected_error_is_500_with_only_a_request_id(
        self, app: Flask, caplog: pytest.LogCaptureFixture
    ) -> None:
        def explode() -> None:
            raise RuntimeError("secret internal detail")

        app.add_url_rule("/boom", "boom", explode)
        logger = logging.getLogger("parley")
        logger.addHandler(caplog.handler)
        try:
            response = app.test_client().get("/boom", headers={"X-Request-ID": "trace-me-1"})
        finally:
            logger.removeHandler(caplog.handler)
        body = assert_problem(response, 500, "internal_error")
        assert "secret" not in response.get_data(as_text=True)
        assert body["request_id"] == "trace-me-1"
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors and "trace-me-1" in errors[0].getMessage()
        assert errors[0].exc_info and "secret internal detail" in str(errors[0].exc_info[1])

    def test_unreachable_database_is_503(self) -> None:
        from tests.conftest import make_app

        app = make_app("postgresql+psycopg://nobody@127.0.0.1:1/none")
        client = app.test_client()
        response = client.post("/api/v1/auth/login", json={"login": "bob", "password": PASSWORD})
        assert_problem(response, 503, "service_unavailable")
        assert response.headers["Retry-After"]
        ready = client.get("/readyz")
        body = assert_problem(ready, 503, "service_unavailable")
        assert body["database"] == "unreachable"
        assert client.get("/healthz").status_code == 200


class TestRequestIds:
    def test_sane_client_id_is_echoed(self, client: FlaskClient) -> None:
        assert (
            client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
            == "abc-123"
        )

    @pytest.mark.parametrize("given", ["", "has spaces", "x" * 200, "<script>", "a\nb"])
    def test_insane_client_id_is_replaced(self, client: FlaskClient, given: str) -> None:
        try:
            response = client.get("/healthz", headers={"X-Request-ID": given})
        except ValueError:  # werkzeug refuses to send a header with a newline at all
            return
        assert response.headers["X-Request-ID"] != given
        assert len(response.headers["X-Request-ID"]) == 32

    def test_one_json_log_line_per_request(
        self, client: FlaskClient, users: UserFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        user = users.create()
        logger = logging.getLogger("parley")
        logger.addHandler(caplog.handler)
        try:
            client.get("/api/v1/users/me", headers={**user.headers, "X-Request-ID": "req-42"})
        finally:
            logger.removeHandler(caplog.handler)
        access = [
            r
            for r in caplog.records
            if r.name == "parley.access" and r.fields["request_id"] == "req-42"  # type: ignore[attr-defined]
        ]
        assert len(access) == 1
        entry = json.loads(JsonFormatter().format(access[0]))
        assert entry["ts"].endswith("Z") and entry["level"] == "info"
        assert entry["request_id"] == "req-42"
        assert entry["method"] == "GET" and entry["path"] == "/api/v1/users/me"
        assert entry["status"] == 200 and entry["user_id"] == user.id
        assert isinstance(entry["duration_ms"], float)


def test_log_lines_stay_json_whatever_the_fields() -> None:
    record = logging.LogRecord("parley.test", logging.INFO, __file__, 1, "odd", None, None)
    record.fields = {"huge": 2**70, "when": object()}  # type: ignore[attr-defined]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["huge"] == 2**70 and entry["message"] == "odd"
