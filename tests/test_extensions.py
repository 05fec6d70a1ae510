"""The JWT manager's memory of verified tokens: faster, and never more permissive."""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import make_app
from tests.factories import UserFactory

ME = "/api/v1/users/me"


def _claims(app: Flask, token: str) -> dict[str, Any]:
    return dict(pyjwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"]))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_is_verified_once_then_remembered(
    client: FlaskClient, users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = users.create("alice")
    real, calls = pyjwt.decode, []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("options"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pyjwt, "decode", counting)
    assert client.get(ME, headers=alice.headers).status_code == 200
    first = len(calls)
    assert first >= 1  # the full check, signature included
    for _ in range(3):
        assert client.get(ME, headers=alice.headers).status_code == 200
    assert len(calls) == first  # no further parsing or HMAC for the same token


def test_a_remembered_token_still_expires(
    app: Flask, client: FlaskClient, users: UserFactory
) -> None:
    alice = users.create("alice")
    payload = _claims(app, alice.access_token)
    payload["exp"] = int(time.time()) + 2
    short = pyjwt.encode(payload, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert client.get(ME, headers=_bearer(short)).status_code == 200
    time.sleep(max(0.0, payload["exp"] - time.time()) + 0.1)
    response = client.get(ME, headers=_bearer(short))
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_expired"


def test_a_remembered_token_still_dies_with_its_session(
    client: FlaskClient, users: UserFactory
) -> None:
    alice = users.create("alice")
    assert client.get(ME, headers=alice.headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=alice.headers).status_code == 204
    response = client.get(ME, headers=alice.headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_revoked"


def test_a_token_remembered_by_one_key_is_checked_again_under_another(
    app: Flask, client: FlaskClient, users: UserFactory, database_url: str
) -> None:
    alice = users.create("alice")
    assert client.get(ME, headers=alice.headers).status_code == 200
    rotated = make_app(database_url, JWT_SECRET_KEY="another-jwt-secret-key-0123456789abcdef")
    response = rotated.test_client().get(ME, headers=alice.headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_invalid"


def test_the_memory_is_bounded(
    app: Flask, client: FlaskClient, users: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.extensions import jwt

    monkeypatch.setattr(jwt, "CACHE_SIZE", 3)
    alice = users.create("alice")
    payload = _claims(app, alice.access_token)
    for n in range(5):
        token = pyjwt.encode({**payload, "n": n}, app.config["JWT_SECRET_KEY"], algorithm="HS256")
        assert client.get(ME, headers=_bearer(token)).status_code == 200
    assert len(jwt._verified) == 3
