"""Security headers on every response, and CORS for configured browser origins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import clean_database, make_app
from tests.factories import UserFactory


def test_every_response_says_nosniff(client: FlaskClient) -> None:
    for path in ("/healthz", "/api/v1/nope", "/api/v1/openapi.json"):
        response = client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_authenticated_responses_are_not_cached(client: FlaskClient, users: UserFactory) -> None:
    user = users.create()
    assert (
        client.get("/api/v1/users/me", headers=user.headers).headers["Cache-Control"] == "no-store"
    )
    assert "Cache-Control" not in client.get("/healthz").headers


def test_docs_page_policy_allows_only_this_origin(client: FlaskClient) -> None:
    policy = client.get("/api/docs").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "http" not in policy  # no third-party origin anywhere


def test_no_cors_by_default(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.fixture
def cors_app(database_url: str, _schema: None) -> Iterator[Flask]:
    application = make_app(
        database_url, CORS_ORIGINS="https://app.example.com, https://admin.example.com"
    )
    yield application
    clean_database(application)


def test_preflight_for_an_allowed_origin(cors_app: Flask) -> None:
    response = cors_app.test_client().options(
        "/api/v1/users/me",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_actual_request_exposes_headers(cors_app: Flask) -> None:
    response = cors_app.test_client().get(
        "/api/v1/nope", headers={"Origin": "https://admin.example.com"}
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    exposed = response.headers["Access-Control-Expose-Headers"].lower()
    assert "x-request-id" in exposed and "retry-after" in exposed


def test_other_origins_are_not_allowed(cors_app: Flask) -> None:
    response = cors_app.test_client().get(
        "/api/v1/nope", headers={"Origin": "https://evil.example.com"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_cookie_session(app: Flask, client: FlaskClient, users: UserFactory) -> None:
    user = users.create()
    response = client.get("/api/v1/users/me", headers=user.headers)
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    with app.test_request_context("/", headers={"Cookie": "session=forged"}):
        from flask import session

        assert dict(session) == {}  # nothing read from a cookie
        with pytest.raises(RuntimeError):  # and nothing can be stored in one
            session["user_id"] = 1
