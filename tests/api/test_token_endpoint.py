"""The OAuth2 token endpoint (RFC 6749 §4.3 and §6), in-process."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.factories import PASSWORD, UserFactory
from tests.helpers import assert_problem

TOKEN = "/api/v1/auth/token"


def oauth_error(response, error: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == error and body["error_description"]
    assert response.headers["Cache-Control"] == "no-store"


def test_password_grant_then_refresh_grant(client: FlaskClient, users: UserFactory) -> None:
    users.create("bob", login=False)
    response = client.post(
        TOKEN,
        data={
            "grant_type": "password",
            "username": "bob@example.com",
            "password": PASSWORD,
            "scope": "anything",
            "client_id": "docs",
        },
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    pair = response.get_json()
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 900
    refreshed = client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 200
    new_access = refreshed.get_json()["access_token"]
    assert (
        client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {new_access}"}
        ).status_code
        == 200
    )
    oauth_error(
        client.post(
            TOKEN, data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
        ),
        "invalid_grant",
    )


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "bob"}, "invalid_request"),
        ({"grant_type": "password", "password": PASSWORD}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "password", "username": "bob", "password": "wrong one"}, "invalid_grant"),
        ({"grant_type": "password", "username": "nobody", "password": PASSWORD}, "invalid_grant"),
        ({"grant_type": "refresh_token", "refresh_token": "made-up"}, "invalid_grant"),
        (
            {"grant_type": "password", "username": "bob\x00", "password": PASSWORD},
            "invalid_request",
        ),
    ],
)
def test_errors_use_rfc_6749_bodies(
    client: FlaskClient, users: UserFactory, form: dict[str, str], error: str
) -> None:
    users.create("bob", login=False)
    oauth_error(client.post(TOKEN, data=form), error)


def test_json_body_is_415(client: FlaskClient) -> None:
    response = client.post(TOKEN, json={"grant_type": "password"})
    assert_problem(response, 415, "unsupported_media_type")


def test_login_without_user_agent(client: FlaskClient, users: UserFactory) -> None:
    user = users.create("bob", login=False)
    response = client.post(
        "/api/v1/auth/login",
        json={"login": "bob", "password": PASSWORD},
        headers={"User-Agent": ""},
    )
    headers = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
    sessions = client.get("/api/v1/auth/sessions", headers=headers).get_json()["items"]
    assert sessions[0]["user_agent"] is None
    assert user.id


@pytest.mark.parametrize("repeated", ["grant_type", "username", "password", "scope"])
def test_a_repeated_parameter_is_an_invalid_request(
    client: FlaskClient, users: UserFactory, repeated: str
) -> None:
    """RFC 6749 §3.2: parameters must not be included more than once."""
    users.create("bob", login=False)
    form = {"grant_type": "password", "username": "bob", "password": PASSWORD, "scope": "x"}
    body = "&".join(f"{k}={v}" for k, v in form.items()) + f"&{repeated}={form[repeated]}"
    response = client.post(TOKEN, data=body, content_type="application/x-www-form-urlencoded")
    oauth_error(response, "invalid_request")
    assert repeated in response.get_json()["error_description"]
