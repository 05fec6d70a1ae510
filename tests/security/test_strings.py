"""Hostile strings: NUL, broken Unicode, bidi tricks, look-alike and case-variant identities,
over-long values, SQL and markup. Each is refused whole, or (for reads) harmless."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema

from tests.factories import PASSWORD
from tests.helpers import assert_problem
from tests.security.conftest import World, assert_refused, database_state

REGISTER = "/api/v1/auth/register"
ME = "/api/v1/users/me"
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE


def registration(**fields: Any) -> dict[str, Any]:
    """A valid registration with some fields replaced."""
    return {"email": "new@example.com", "username": "newcomer", "password": PASSWORD, **fields}


#: (case id, method, path, body, status, code), sent as Alice (registration needs no token).
CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    (
        "username-nul",
        "POST",
        REGISTER,
        registration(username="new\x00comer"),
        422,
        "validation_error",
    ),
    (
        "email-nul",
        "POST",
        REGISTER,
        registration(email="new\x00@example.com"),
        422,
        "validation_error",
    ),
    (
        "password-lone-surrogate",
        "POST",
        REGISTER,
        registration(password="pass\udc00word!"),
        422,
        "validation_error",
    ),
    (
        "display-name-rtl-override",
        "POST",
        REGISTER,
        registration(display_name=f"gpj.{RLO}exe"),
        422,
        "validation_error",
    ),
    ("display-name-isolate", "PATCH", ME, {"display_name": "admin\u2066"}, 422, "validation_error"),
    (
        "display-name-newline",
        "PATCH",
        ME,
        {"display_name": "Alice\nAdmin"},
        422,
        "validation_error",
    ),
    ("display-name-nul", "PATCH", ME, {"display_name": "Al\x00ice"}, 422, "validation_error"),
    ("display-name-too-long", "PATCH", ME, {"display_name": "x" * 65}, 422, "validation_error"),
    ("display-name-blank", "PATCH", ME, {"display_name": "   "}, 422, "validation_error"),
    (
        "username-cyrillic-homoglyph",
        "POST",
        REGISTER,
        registration(username="\u0430lice"),
        422,
        "validation_error",
    ),
    (
        "username-fullwidth",
        "POST",
        REGISTER,
        registration(username="\uff41\uff4c\uff49\uff43\uff45"),
        422,
        "validation_error",
    ),
    ("username-case-variant", "POST", REGISTER, registration(username="ALICE"), 409, "conflict"),
    (
        "email-case-variant",
        "POST",
        REGISTER,
        registration(email="Alice@EXAMPLE.com"),
        409,
        "conflict",
    ),
    (
        "email-padded-variant",
        "POST",
        REGISTER,
        registration(email="  alice@example.com "),
        409,
        "conflict",
    ),
    (
        "username-too-long",
        "POST",
        REGISTER,
        registration(username="u" * 33),
        422,
        "validation_error",
    ),
    ("username-too-short", "POST", REGISTER, registration(username="ab"), 422, "validation_error"),
    (
        "email-too-long",
        "POST",
        REGISTER,
        registration(email="e" * 250 + "@example.com"),
        422,
        "validation_error",
    ),
    (
        "password-too-long",
        "POST",
        REGISTER,
        registration(password="p" * 129),
        422,
        "validation_error",
    ),
    (
        "username-sql",
        "POST",
        REGISTER,
        registration(username="x' OR '1'='1"),
        422,
        "validation_error",
    ),
    (
        "username-markup",
        "POST",
        REGISTER,
        registration(username="<script>"),
        422,
        "validation_error",
    ),
    (
        "email-markup",
        "POST",
        REGISTER,
        registration(email="<img src=x>@example.com"),
        422,
        "validation_error",
    ),
    (
        "title-rtl-override",
        "POST",
        "/api/v1/conversations",
        {"kind": "group", "title": f"{RLO}nimda", "member_ids": []},
        422,
        "validation_error",
    ),
    (
        "title-too-long",
        "PATCH",
        "/api/v1/conversations/{group}",
        {"title": "t" * 201},
        422,
        "validation_error",
    ),
    (
        "message-lone-surrogate",
        "POST",
        "/api/v1/conversations/{group}/messages",
        {"body": "hi \ud83d"},
        422,
        "validation_error",
    ),
    (
        "message-nul",
        "POST",
        "/api/v1/conversations/{group}/messages",
        {"body": "hi\x00"},
        422,
        "validation_error",
    ),
    (
        "message-too-long",
        "POST",
        "/api/v1/conversations/{group}/messages",
        {"body": "m" * 10_001},
        422,
        "validation_error",
    ),
    (
        "message-blank",
        "POST",
        "/api/v1/conversations/{group}/messages",
        {"body": " \n\t "},
        422,
        "validation_error",
    ),
    (
        "client-id-too-long",
        "POST",
        "/api/v1/conversations/{group}/messages",
        {"body": "hi", "client_id": "c" * 65},
        422,
        "validation_error",
    ),
    (
        "username-trailing-newline",
        "POST",
        REGISTER,
        registration(username="newcomer\n"),
        422,
        "validation_error",
    ),
    ("rename-trailing-newline", "PATCH", ME, {"username": "alice2\n"}, 422, "validation_error"),
    (
        "login-sql",
        "POST",
        "/api/v1/auth/login",
        {"login": "alice' --", "password": "' OR 1=1 --"},
        401,
        "invalid_credentials",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hostile_strings_are_refused_whole(
    app: Flask,
    client: FlaskClient,
    world: World,
    method: str,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = database_state(app)
    headers = {} if path in (REGISTER, "/api/v1/auth/login") else world.alice.headers
    response = client.open(
        path.format(group=world.group_id), method=method, json=body, headers=headers
    )
    assert_refused(app, before, response, status, code)


@pytest.mark.parametrize(
    "query",
    ["' OR '1'='1", "%", "_", "\\", "alice%' --", "<script>alert(1)</script>", "\u0430lice"],
)
def test_search_treats_sql_and_wildcards_as_text(
    app: Flask, client: FlaskClient, world: World, query: str
) -> None:
    before = database_state(app)
    response = client.get("/api/v1/users", query_string={"q": query}, headers=world.carol.headers)
    assert response.status_code == 200
    assert response.get_json()["items"] == []  # no username or display name starts with it
    assert database_state(app) == before


def test_markup_in_a_message_is_stored_and_returned_verbatim(
    client: FlaskClient, world: World
) -> None:
    markup = "<script>alert('x')</script> & <b>bold</b>"
    url = f"/api/v1/conversations/{world.group_id}/messages"
    sent = client.post(url, json={"body": markup}, headers=world.alice.headers)
    assert sent.status_code == 201
    assert sent.get_json()["body"] == markup
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/users?q=a&cursor=abc%0A",
        "/api/v1/conversations?cursor=abc%0A",
        "/api/v1/events?since=5%0A",
        "/api/v1/events/stream?since=5%0A",
    ],
)
def test_a_trailing_newline_never_passes_a_pattern(
    client: FlaskClient, world: World, path: str
) -> None:
    """``$`` matches before a final newline; every pattern must match the whole value."""
    response = client.get(path, headers=world.alice.headers)
    body = assert_problem(response, 422, "validation_error")
    assert list(body["errors"]["query"]) in (["cursor"], ["since"])


def test_every_pattern_in_the_schemas_matches_whole_values() -> None:
    """No schema uses marshmallow's Regexp, whose ``$`` lets a trailing newline through."""
    from marshmallow import validate

    from app import create_app
    from app.schemas.fields import Pattern
    from config import TestingConfig

    create_app(TestingConfig)  # every schema imported
    seen = 0
    for schema_class in _all_subclasses(Schema):
        for field in schema_class._declared_fields.values():
            for validator in _validators(field):
                if isinstance(validator, validate.Regexp):
                    assert isinstance(validator, Pattern), (schema_class, field)
                    seen += 1
    assert seen >= 4


def _all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return {c for c in found if c.__module__.startswith("app.")}


def _validators(field: Any) -> list[Any]:
    inner = getattr(field, "inner", None)  # a List's item field
    return list(field.validators) + (_validators(inner) if inner is not None else [])
