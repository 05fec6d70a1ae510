"""Hostile bodies and headers: malformed, ambiguous, huge or mistyped input is refused whole."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import PASSWORD
from tests.helpers import assert_problem
from tests.security.conftest import World, assert_refused, database_state

REGISTER = "/api/v1/auth/register"
ME = "/api/v1/users/me"
GOOD_USER = f'"email": "new@example.com", "username": "newcomer", "password": "{PASSWORD}"'

#: (case id, raw body, expected status, expected code) against POST /auth/register.
RAW_BODIES: list[tuple[str, bytes, int, str]] = [
    ("truncated-object", b"{", 400, "invalid_json"),
    ("single-quotes", b"{'email': 'a@b.co'}", 400, "invalid_json"),
    ("trailing-comma", ("{" + GOOD_USER + ",}").encode(), 400, "invalid_json"),
    ("invalid-utf8", b"\xff\xfe\xfd", 400, "invalid_json"),
    ("latin1-string", b'{"email": "caf\xe9@example.com"}', 400, "invalid_json"),
    ("utf16-json", ("{" + GOOD_USER + "}").encode("utf-16"), 400, "invalid_json"),
    ("utf8-bom", b"\xef\xbb\xbf{" + GOOD_USER.encode() + b"}", 400, "invalid_json"),
    ("nested-arrays-30k", b"[" * 30_000 + b"]" * 30_000, 400, "invalid_json"),
    ("nested-objects-unclosed", b'{"a":' * 10_000, 400, "invalid_json"),
    ("nan", ("{" + GOOD_USER + ', "display_name": NaN}').encode(), 400, "invalid_json"),
    ("infinity", b'{"email": -Infinity}', 400, "invalid_json"),
    (
        "duplicate-key",
        ('{"username": "harmless", ' + GOOD_USER + "}").encode(),
        400,
        "invalid_json",
    ),
    ("whitespace-only", b"   \n ", 400, "invalid_json"),
    ("empty-object", b"{}", 422, "validation_error"),
    ("top-level-array", b'[{"email": "a@b.co"}]', 422, "validation_error"),
    ("top-level-string", b'"register me"', 422, "validation_error"),
    ("top-level-null", b"null", 422, "validation_error"),
    ("top-level-number", b"1e999", 422, "validation_error"),
    ("unknown-field", ("{" + GOOD_USER + ', "is_admin": true}').encode(), 422, "validation_error"),
    (
        "huge-body",
        ("{" + GOOD_USER + ', "x": "' + "a" * 70_000 + '"}').encode(),
        413,
        "payload_too_large",
    ),
]


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [case[1:] for case in RAW_BODIES],
    ids=[case[0] for case in RAW_BODIES],
)
def test_malformed_and_ambiguous_json(
    app: Flask, client: FlaskClient, world: World, raw: bytes, status: int, code: str
) -> None:
    before = database_state(app)
    response = client.post(REGISTER, data=raw, content_type="application/json")
    assert_refused(app, before, response, status, code)


def test_a_repeated_key_is_named(app: Flask, client: FlaskClient, world: World) -> None:
    before = database_state(app)
    raw = '{"display_name": "a", "display_name": "b"}'
    response = client.patch(
        ME, data=raw, content_type="application/json", headers=world.alice.headers
    )
    body = assert_refused(app, before, response, 400, "invalid_json")
    assert "display_name" in body["detail"]


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/javascript",
        None,
    ],
)
def test_wrong_or_missing_content_type_is_415(
    app: Flask, client: FlaskClient, world: World, content_type: str | None
) -> None:
    before = database_state(app)
    raw = ("{" + GOOD_USER + "}").encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post(REGISTER, data=raw, headers=headers)
    assert_refused(app, before, response, 415, "unsupported_media_type")


#: (case id, method, path, JSON body, query string) sent as Alice; each must be a 422.
WRONG_TYPES: list[tuple[str, str, str, Any, str]] = [
    ("send-body-number", "POST", "/api/v1/conversations/{group}/messages", {"body": 42}, ""),
    ("send-body-null", "POST", "/api/v1/conversations/{group}/messages", {"body": None}, ""),
    (
        "send-client-id-object",
        "POST",
        "/api/v1/conversations/{group}/messages",
        {"body": "hi", "client_id": {"$ne": ""}},
        "",
    ),
    (
        "group-members-string",
        "POST",
        "/api/v1/conversations",
        {"kind": "group", "title": "t", "member_ids": "1,2"},
        "",
    ),
    (
        "group-member-huge-int",
        "POST",
        "/api/v1/conversations",
        {"kind": "group", "title": "t", "member_ids": [10**30]},
        "",
    ),
    (
        "group-member-float",
        "POST",
        "/api/v1/conversations",
        {"kind": "group", "title": "t", "member_ids": [1.5]},
        "",
    ),
    ("kind-unknown", "POST", "/api/v1/conversations", {"kind": "channel", "member_ids": []}, ""),
    ("read-seq-string", "POST", "/api/v1/conversations/{group}/read", {"seq": "1"}, ""),
    ("read-seq-negative", "POST", "/api/v1/conversations/{group}/read", {"seq": -5}, ""),
    ("me-mass-assignment", "PATCH", ME, {"is_admin": True}, ""),
    ("me-display-name-list", "PATCH", ME, {"display_name": ["a"]}, ""),
    ("limit-not-a-number", "GET", "/api/v1/conversations", None, "limit=abc"),
    ("limit-over-maximum", "GET", "/api/v1/conversations", None, "limit=1000"),
    ("cursor-forged", "GET", "/api/v1/conversations", None, "cursor=eyJmb28iOiJiYXIifQ"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "query"),
    [case[1:] for case in WRONG_TYPES],
    ids=[case[0] for case in WRONG_TYPES],
)
def test_wrongly_typed_input_is_422(
    app: Flask,
    client: FlaskClient,
    world: World,
    method: str,
    path: str,
    body: Any,
    query: str,
) -> None:
    before = database_state(app)
    url = path.format(group=world.group_id) + (f"?{query}" if query else "")
    response = client.open(
        url,
        method=method,
        data=None if body is None else json.dumps(body),
        content_type="application/json",
        headers=world.alice.headers,
    )
    assert_refused(app, before, response, 422, "validation_error")


def test_giant_authorization_header_is_401(app: Flask, client: FlaskClient, world: World) -> None:
    before = database_state(app)
    headers = {"Authorization": "Bearer " + "A" * 60_000}
    response = client.patch(ME, json={"display_name": "giant"}, headers=headers)
    assert_refused(app, before, response, 401)


def test_giant_request_id_is_replaced_not_echoed(
    app: Flask, client: FlaskClient, world: World
) -> None:
    before = database_state(app)
    response = client.post(
        REGISTER, data=b"{", content_type="application/json", headers={"X-Request-ID": "r" * 9000}
    )
    body = assert_refused(app, before, response, 400, "invalid_json")
    assert len(body["request_id"]) == 32


def test_a_chunked_body_over_the_limit_is_413(
    app: Flask, client: FlaskClient, world: World
) -> None:
    """A streamed body has no Content-Length: it is measured as it is read (gunicorn's way)."""
    before = database_state(app)

    def chunked(raw: bytes) -> Any:
        return client.post(
            REGISTER,
            data=io.BytesIO(raw),
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )

    over = ("{" + GOOD_USER + ', "x": "' + "a" * 70_000 + '"}').encode()
    assert_refused(app, before, chunked(over), 413, "payload_too_large")
    padding = 64 * 1024 - len(("{" + GOOD_USER + ', "display_name": ""}').encode())
    exactly = ("{" + GOOD_USER + ', "display_name": "' + "a" * padding + '"}').encode()
    assert len(exactly) == 64 * 1024  # at the limit is not over it: read, then validated
    assert_refused(app, before, chunked(exactly), 422, "validation_error")


@pytest.mark.parametrize(
    "query",
    [
        "before=5&before=3",
        "after=1&after=2&limit=5",
        "limit=10&limit=20",
    ],
)
def test_a_repeated_single_value_query_parameter_is_422(
    client: FlaskClient, world: World, query: str
) -> None:
    """Which of two values a server would use is a guess: it refuses instead."""
    url = f"/api/v1/conversations/{world.group_id}/messages?{query}"
    body = assert_problem(client.get(url, headers=world.alice.headers), 422, "validation_error")
    assert list(body["errors"]["query"]) == [query.split("=")[0]]
    assert body["errors"]["query"][query.split("=")[0]] == ["Given more than once."]


def test_unknown_repeated_query_parameters_are_ignored(client: FlaskClient, world: World) -> None:
    url = f"/api/v1/conversations/{world.group_id}/messages?utm=1&utm=2"
    assert client.get(url, headers=world.alice.headers).status_code == 200
