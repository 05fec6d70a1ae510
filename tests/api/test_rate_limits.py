"""Rate limits: per client IP and per account on the auth endpoints, per user on sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import clean_database, make_app
from tests.factories import Chat, UserFactory
from tests.helpers import assert_problem

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def limited(database_url: str, _schema: None) -> Iterator[Flask]:
    """An app with rate limits on (memory storage), 10 auth attempts a minute."""
    application = make_app(
        database_url,
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_AUTH="10 per minute",
    )
    yield application
    clean_database(application)


def attempt(client: FlaskClient, login: str, ip: str = "10.0.0.1", **headers: str) -> int:
    response = client.post(
        LOGIN,
        json={"login": login, "password": "wrong password!"},
        environ_base={"REMOTE_ADDR": ip},
        headers=headers,
    )
    return response.status_code


def test_eleventh_login_attempt_is_429_with_retry_after(limited: Flask) -> None:
    client = limited.test_client()
    assert [attempt(client, "bob") for _ in range(10)] == [401] * 10
    response = client.post(
        LOGIN, json={"login": "bob", "password": "x"}, environ_base={"REMOTE_ADDR": "10.0.0.1"}
    )
    body = assert_problem(response, 429, "rate_limited")
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert "request_id" in body


def test_per_account_across_ips(limited: Flask) -> None:
    client = limited.test_client()
    codes = [attempt(client, "bob", ip=f"10.0.1.{i}") for i in range(11)]
    assert codes == [401] * 10 + [429]


def test_per_ip_across_accounts(limited: Flask) -> None:
    client = limited.test_client()
    codes = [attempt(client, f"user{i}", ip="10.0.2.1") for i in range(11)]
    assert codes == [401] * 10 + [429]
    assert attempt(client, "someone", ip="10.0.2.2") == 401  # another client is unaffected


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/auth/register", {"email": "x@example.com", "username": "x", "password": "short"}),
        ("/api/v1/auth/password-reset", {"email": "x@example.com"}),
    ],
)
def test_register_and_reset_are_limited(limited: Flask, url: str, body: dict[str, str]) -> None:
    client = limited.test_client()
    codes = [client.post(url, json=body).status_code for _ in range(11)]
    assert codes[-1] == 429 and 429 not in codes[:10]


def test_token_endpoint_is_limited(limited: Flask) -> None:
    client = limited.test_client()
    form = {"grant_type": "password", "username": "bob", "password": "nope"}
    codes = [client.post("/api/v1/auth/token", data=form).status_code for _ in range(11)]
    assert codes == [400] * 10 + [429]


def test_spoofed_forwarded_for_does_not_reset_the_ip_limit(
    database_url: str, _schema: None
) -> None:
    app = make_app(
        database_url, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://", TRUSTED_PROXIES=1
    )
    try:
        client = app.test_client()
        # The trusted proxy (REMOTE_ADDR) appends the real client; the client spoofs what precedes.
        codes = [
            attempt(
                client,
                f"user{i}",
                ip="192.0.2.10",
                **{"X-Forwarded-For": f"203.0.113.{i}, 198.51.100.7"},
            )
            for i in range(11)
        ]
        assert codes == [401] * 10 + [429]
        assert (
            attempt(client, "other", ip="192.0.2.10", **{"X-Forwarded-For": "198.51.100.8"}) == 401
        )
    finally:
        clean_database(app)


def test_forwarded_for_is_ignored_without_trusted_proxies(limited: Flask) -> None:
    client = limited.test_client()
    codes = [
        attempt(client, f"user{i}", ip="10.0.3.1", **{"X-Forwarded-For": f"203.0.113.{i}"})
        for i in range(11)
    ]
    assert codes[-1] == 429


def test_message_sends_per_user(database_url: str, _schema: None) -> None:
    app = make_app(
        database_url,
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_MESSAGES="3 per 10 seconds",
    )
    try:
        client = app.test_client()
        users = UserFactory(app, client)
        alice, bob = users.create("alice"), users.create("bob")
        direct = Chat(client).direct(alice, bob)
        url = f"/api/v1/conversations/{direct['id']}/messages"
        codes = [
            client.post(url, json={"body": "hi"}, headers=alice.headers).status_code
            for _ in range(4)
        ]
        assert codes == [201, 201, 201, 429]
        assert client.post(url, json={"body": "hi"}, headers=bob.headers).status_code == 201
        # A rejected send stored nothing.
        assert (
            client.get(f"/api/v1/conversations/{direct['id']}", headers=bob.headers).get_json()[
                "last_seq"
            ]
            == 4
        )
    finally:
        clean_database(app)


def test_switched_off(client: FlaskClient) -> None:
    assert [attempt(client, "bob") for _ in range(15)] == [401] * 15


def test_refresh_grants_are_limited_by_client_ip_only(limited: Flask) -> None:
    """A refresh grant names no account: refreshes from many clients share no bucket."""
    client = limited.test_client()
    form = {"grant_type": "refresh_token", "refresh_token": "garbage"}

    def refresh(ip: str) -> int:
        return client.post(
            "/api/v1/auth/token", data=form, environ_base={"REMOTE_ADDR": ip}
        ).status_code

    # Ten garbage refreshes from one client do not lock out anyone else's refreshes...
    assert [refresh("10.0.4.1") for _ in range(10)] == [400] * 10
    assert [refresh(f"10.0.5.{i}") for i in range(20)] == [400] * 20
    # ...while that one client is limited.
    assert refresh("10.0.4.1") == 429


def test_one_account_one_bucket_whatever_its_name(limited: Flask) -> None:
    client = limited.test_client()
    UserFactory(limited, client).create("bob", login=False)
    names = ["bob", "BOB", "bob@example.com", " Bob@Example.com "] * 3
    codes = [attempt(client, name, ip=f"10.0.6.{i}") for i, name in enumerate(names[:11])]
    assert codes == [401] * 10 + [429]


def test_every_password_check_shares_the_accounts_bucket(limited: Flask) -> None:
    """Password change and account deletion count with login: no unlimited password oracle."""
    client = limited.test_client()
    bob = UserFactory(limited, client).create("bob")  # its login is the first attempt
    wrong = {"current_password": "not my password", "new_password": "a new passphrase!"}
    codes = [
        client.post("/api/v1/auth/password", json=wrong, headers=bob.headers).status_code
        for _ in range(5)
    ]
    codes += [
        client.delete(
            "/api/v1/users/me", json={"password": "not my password"}, headers=bob.headers
        ).status_code
        for _ in range(4)
    ]
    assert codes == [403] * 9
    response = client.post("/api/v1/auth/password", json=wrong, headers=bob.headers)
    assert_problem(response, 429, "rate_limited")
    # The account's bucket is full for logins too, from any client.
    assert attempt(client, "bob@example.com", ip="10.0.7.1") == 429


def test_other_accounts_keep_their_buckets(limited: Flask) -> None:
    client = limited.test_client()
    users = UserFactory(limited, client)
    users.create("bob", login=False)
    alice = users.create("alice")
    assert [attempt(client, "bob", ip=f"10.0.8.{i}") for i in range(11)][-1] == 429
    wrong = {"current_password": "not my password", "new_password": "a new passphrase!"}
    response = client.post("/api/v1/auth/password", json=wrong, headers=alice.headers)
    assert response.status_code == 403
