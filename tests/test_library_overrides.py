"""The library internals app/library_overrides.py relies on: these fail if a pinned library
changes them, before a deployment finds out; and what each override does."""

from __future__ import annotations

import inspect
import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import flask_jwt_extended
import flask_smorest
import jwt
import pytest
from flask import Flask
from gunicorn import util
from gunicorn.http.message import Message
from gunicorn.workers import base

from app import library_overrides as overrides


def test_workers_write_their_own_errors_through_util_write_error() -> None:
    source = inspect.getsource(base.Worker.handle_error)
    assert "util.write_error(client, status_int, reason, mesg)" in source
    assert list(inspect.signature(util.write_error).parameters) == [
        "sock",
        "status_int",
        "reason",
        "mesg",
    ]


def test_a_request_marked_must_close_closes_its_connection() -> None:
    assert "self.must_close = False" in inspect.getsource(Message.__init__)
    should_close = inspect.getsource(Message.should_close)
    assert "if self.must_close:" in should_close


def test_install_replaces_the_error_writer() -> None:
    original = util.write_error
    try:
        overrides.install_problem_errors()
        assert util.write_error is overrides.write_problem
    finally:
        util.write_error = original


class FakeSocket:
    def __init__(self) -> None:
        self.sent = b""
        self.timeout: float | None = 5.0

    def gettimeout(self) -> float | None:
        return self.timeout

    def setblocking(self, flag: bool) -> None:
        self.timeout = None if flag else 0.0

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)


def test_write_problem_answers_problem_json_without_echoing_the_request() -> None:
    sock = FakeSocket()
    overrides.write_problem(sock, 414, "URI Too Long", "Invalid request line '<script>'")
    head, _, body = sock.sent.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 414 URI Too Long"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Connection"] == "close"
    assert int(headers["Content-Length"]) == len(body)
    problem = json.loads(body)
    assert problem["status"] == 414 and problem["code"] == "uri_too_long"
    assert problem["request_id"] == headers["X-Request-ID"]
    assert b"script" not in sock.sent


def test_unknown_statuses_still_get_a_problem() -> None:
    problem = json.loads(overrides.problem_bytes(418, "I'm a teapot").partition(b"\r\n\r\n")[2])
    assert problem["status"] == 418 and problem["code"] == "error"


def test_only_declared_bodies_over_the_drain_limit_close() -> None:
    def request(*headers: tuple[str, str]) -> SimpleNamespace:
        return SimpleNamespace(headers=list(headers), must_close=False)

    big = request(("CONTENT-LENGTH", "2000"))
    small = request(("CONTENT-LENGTH", "1000"))
    chunked = request(("TRANSFER-ENCODING", "chunked"))
    for req in (big, small, chunked):
        overrides.close_after_oversized_body(req, drain_limit=1000)
    assert (big.must_close, small.must_close, chunked.must_close) == (True, False, False)


def test_smorest_registers_its_error_responses_with_the_default_content_type() -> None:
    source = inspect.getsource(flask_smorest.Api._register_responses)
    assert "self.DEFAULT_RESPONSE_CONTENT_TYPE" in source
    assert "self.ERROR_SCHEMA" in source


def test_every_documented_error_is_problem_json(app: Flask) -> None:
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    responses = spec["components"]["responses"]
    assert responses["DEFAULT_ERROR"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    ok = spec["paths"]["/api/v1/users/me"]["get"]["responses"]["200"]["content"]
    assert list(ok) == ["application/json"]  # successful answers stay application/json


def test_flask_jwt_extended_decodes_through_decode_jwt_from_config() -> None:
    source = inspect.getsource(flask_jwt_extended.utils.decode_token)
    assert "jwt_manager._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)" in source
    parameters = inspect.signature(flask_jwt_extended.JWTManager._decode_jwt_from_config)
    assert list(parameters.parameters) == ["self", "encoded_token", "csrf_value", "allow_expired"]


def test_a_verified_token_is_remembered_until_it_expires(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = overrides.CachingJWTManager()
    full_checks: list[str] = []
    library = flask_jwt_extended.JWTManager._decode_jwt_from_config

    def counted(self: Any, token: str, *args: Any) -> dict[str, Any]:
        full_checks.append(token)
        return library(self, token, *args)

    monkeypatch.setattr(flask_jwt_extended.JWTManager, "_decode_jwt_from_config", counted)
    with app.app_context():
        token = flask_jwt_extended.create_access_token("7", additional_claims={"sid": 1})
        first = manager._decode_jwt_from_config(token)
        first["sub"] = "changed by the caller"  # a copy: the cache is not touched
        second = manager._decode_jwt_from_config(token)
        assert second["sub"] == "7" and full_checks == [token]
        expired = flask_jwt_extended.create_access_token("7", expires_delta=timedelta(seconds=-1))
        with pytest.raises(jwt.ExpiredSignatureError):
            manager._decode_jwt_from_config(expired)
