"""Accounts and token sessions against real gunicorn workers over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from oauthlib.oauth2 import LegacyApplicationClient
from requests_oauthlib import OAuth2Session

from app.services import user_service

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


def register_and_login(base: str, username: str) -> dict[str, str]:
    created = requests.post(
        f"{base}/api/v1/auth/register",
        json={"email": f"{username}@example.com", "username": username, "password": PASSWORD},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    login = requests.post(
        f"{base}/api/v1/auth/login", json={"login": username, "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    return login.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_register_login_call_round_trip(app: Flask, server: str) -> None:
    pair = register_and_login(server, "alice")
    me = requests.get(f"{server}/api/v1/users/me", headers=bearer(pair["access_token"]), timeout=10)
    assert me.status_code == 200 and me.json()["username"] == "alice"
    assert me.headers["X-Request-ID"]
    patched = requests.patch(
        f"{server}/api/v1/users/me",
        json={"display_name": "Alice"},
        headers=bearer(pair["access_token"]),
        timeout=10,
    )
    assert patched.json()["display_name"] == "Alice"
    rotated = requests.post(
        f"{server}/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}, timeout=10
    )
    assert rotated.status_code == 200


def test_revocation_holds_on_every_worker(app: Flask, server: str) -> None:
    pair = register_and_login(server, "bob")
    url = f"{server}/api/v1/users/me"
    with ThreadPoolExecutor(6) as pool:
        before = list(
            pool.map(
                lambda _: (
                    requests.get(url, headers=bearer(pair["access_token"]), timeout=10).status_code
                ),
                range(30),
            )
        )
    assert before == [200] * 30
    assert (
        requests.post(
            f"{server}/api/v1/auth/logout", headers=bearer(pair["access_token"]), timeout=10
        ).status_code
        == 204
    )
    with ThreadPoolExecutor(6) as pool:
        after = list(
            pool.map(
                lambda _: requests.get(url, headers=bearer(pair["access_token"]), timeout=10),
                range(30),
            )
        )
    assert {r.status_code for r in after} == {401}
    assert {r.json()["code"] for r in after} == {"token_revoked"}
    assert {r.headers["Content-Type"] for r in after} == {"application/problem+json"}


def test_refresh_reuse_across_workers_kills_the_session(app: Flask, server: str) -> None:
    pair = register_and_login(server, "carol")

    def refresh(_: int) -> int:
        return requests.post(
            f"{server}/api/v1/auth/refresh",
            json={"refresh_token": pair["refresh_token"]},
            timeout=15,
        ).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(refresh, range(6)))
    assert codes.count(200) <= 1 and set(codes) <= {200, 401, 503}, codes
    me = requests.get(f"{server}/api/v1/users/me", headers=bearer(pair["access_token"]), timeout=10)
    assert me.status_code == 401


def test_racing_registrations_create_one_account(app: Flask, server: str) -> None:
    def register(i: int) -> int:
        return requests.post(
            f"{server}/api/v1/auth/register",
            json={
                "email": f"dup{i}@example.com",
                "username": "Duplicate" if i % 2 else "duplicate",
                "password": PASSWORD,
            },
            timeout=15,
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(register, range(8)))
    assert codes.count(201) == 1, codes
    assert set(codes) <= {201, 409, 503}, codes


def test_hostile_requests_over_http(app: Flask, server: str) -> None:
    url = f"{server}/api/v1/auth/register"
    too_big = requests.post(
        url,
        data=b"{" + b" " * 70_000 + b"}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert too_big.status_code == 413 and too_big.json()["code"] == "payload_too_large"
    bad_json = requests.post(
        url, data=b"{nope", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "invalid_json"
    wrong_type = requests.post(url, data=b"a=b", headers={"Content-Type": "text/plain"}, timeout=10)
    assert wrong_type.status_code == 415
    unknown = requests.get(f"{server}/nowhere", timeout=10)
    assert (
        unknown.status_code == 404 and unknown.headers["Content-Type"] == "application/problem+json"
    )


def test_standard_oauth2_client_obtains_and_refreshes_tokens(
    app: Flask, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # plain HTTP on loopback
    register_and_login(server, "dave")
    token_url = f"{server}/api/v1/auth/token"
    oauth = OAuth2Session(client=LegacyApplicationClient(client_id="parley-docs"))
    token = oauth.fetch_token(
        token_url=token_url, username="dave", password=PASSWORD, include_client_id=True
    )
    assert token["token_type"] == "Bearer" and token["access_token"] and token["refresh_token"]
    assert oauth.get(f"{server}/api/v1/users/me", timeout=10).json()["username"] == "dave"
    refreshed = oauth.refresh_token(token_url)
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert oauth.get(f"{server}/api/v1/users/me", timeout=10).status_code == 200
    # The spent refresh token is reuse: RFC 6749 error body, and the session is gone.
    reuse = requests.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        timeout=10,
    )
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert oauth.get(f"{server}/api/v1/users/me", timeout=10).status_code == 401
    wrong = requests.post(
        token_url,
        data={"grant_type": "password", "username": "dave", "password": "nope"},
        timeout=10,
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert wrong.headers["Cache-Control"] == "no-store"


def test_every_users_and_auth_endpoint_over_http(app: Flask, server: str) -> None:
    api = f"{server}/api/v1"
    with requests.Session() as http:
        alice = register_and_login(server, "alice")
        bob = register_and_login(server, "bob")
        a, b = bearer(alice["access_token"]), bearer(bob["access_token"])
        bob_id = http.get(f"{api}/users/me", headers=b, timeout=10).json()["id"]

        assert http.get(f"{api}/users/{bob_id}", headers=a, timeout=10).json()["username"] == "bob"
        found = http.get(f"{api}/users", params={"q": "BO"}, headers=a, timeout=10).json()
        assert [u["username"] for u in found["items"]] == ["bob"]
        assert (
            http.patch(
                f"{api}/users/me", json={"username": "Bobby"}, headers=b, timeout=10
            ).status_code
            == 200
        )

        second = requests.post(
            f"{api}/auth/login", json={"login": "alice", "password": PASSWORD}, timeout=10
        ).json()
        sessions = http.get(f"{api}/auth/sessions", headers=a, timeout=10).json()["items"]
        assert len(sessions) == 2
        other = next(s for s in sessions if not s["current"])
        assert (
            http.delete(f"{api}/auth/sessions/{other['id']}", headers=a, timeout=10).status_code
            == 204
        )
        assert (
            http.get(
                f"{api}/users/me", headers=bearer(second["access_token"]), timeout=10
            ).status_code
            == 401
        )

        changed = http.post(
            f"{api}/auth/password",
            json={"current_password": PASSWORD, "new_password": "another long password"},
            headers=a,
            timeout=10,
        )
        assert changed.status_code == 204
        assert http.get(f"{api}/users/me", headers=a, timeout=10).status_code == 200

        # Admin endpoints: alice is made admin from the command line, as an operator would.
        assert http.get(f"{api}/admin/users", headers=a, timeout=10).status_code == 403
        promote = app.test_cli_runner().invoke(
            args=["users", "create", "root", "root@example.com", "--admin"], input=PASSWORD + "\n"
        )
        assert promote.exit_code == 0, promote.output
        root = bearer(
            requests.post(
                f"{api}/auth/login", json={"login": "root", "password": PASSWORD}, timeout=10
            ).json()["access_token"]
        )
        listed = http.get(
            f"{api}/admin/users", params={"limit": 2}, headers=root, timeout=10
        ).json()
        assert len(listed["items"]) == 2 and listed["next_cursor"]
        deactivated = http.patch(
            f"{api}/admin/users/{bob_id}", json={"is_active": False}, headers=root, timeout=10
        )
        assert deactivated.json()["is_active"] is False
        assert http.get(f"{api}/users/me", headers=b, timeout=10).status_code == 401

        assert (
            http.delete(
                f"{api}/users/me", json={"password": "another long password"}, headers=a, timeout=10
            ).status_code
            == 204
        )
        assert http.get(f"{api}/users/me", headers=a, timeout=10).status_code == 401


def make_admins(app: Flask, server: str, *names: str) -> list[dict[str, Any]]:
    """Admins created in the database, logged in through the server; each ``{id, token}``."""
    admins = []
    for name in names:
        with app.app_context():
            admin_id = user_service.create_user(
                f"{name}@example.com", name, PASSWORD, is_admin=True
            ).id
        login = requests.post(
            f"{server}/api/v1/auth/login", json={"login": name, "password": PASSWORD}, timeout=10
        )
        assert login.status_code == 200, login.text
        admins.append({"id": admin_id, "token": login.json()["access_token"]})
    return admins


def at_once(*calls: Callable[[], requests.Response]) -> list[requests.Response]:
    """Make the calls from threads released together, and return their responses in order."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(released, calls))


def log_in(server: str, name: str, password: str = PASSWORD) -> Callable[[], requests.Response]:
    url = f"{server}/api/v1/auth/login"
    return lambda: requests.post(url, json={"login": name, "password": password}, timeout=15)


def set_active(
    server: str, actor: dict[str, Any], target_id: int, active: bool
) -> Callable[[], requests.Response]:
    url = f"{server}/api/v1/admin/users/{target_id}"
    headers = bearer(actor["token"])
    return lambda: requests.patch(url, json={"is_active": active}, headers=headers, timeout=15)


def test_logins_racing_a_deactivation_leave_no_live_session(app: Flask, server: str) -> None:
    """Logins that overlap an admin's deactivation: afterwards no token of theirs works."""
    [root] = make_admins(app, server, "racer-root")
    for round_number in range(4):
        name = f"racer{round_number}"
        first = register_and_login(server, name)
        me = requests.get(f"{server}/api/v1/users/me", headers=bearer(first["access_token"]))
        *logins, deactivated = at_once(
            *[log_in(server, name)] * 8, set_active(server, root, me.json()["id"], False)
        )
        assert deactivated.status_code == 200, deactivated.text
        assert {r.status_code for r in logins} <= {200, 401}, [r.text for r in logins]
        for pair in [r.json() for r in logins if r.status_code == 200] + [first]:
            me = requests.get(f"{server}/api/v1/users/me", headers=bearer(pair["access_token"]))
            assert me.status_code == 401, me.text
            refreshed = requests.post(
                f"{server}/api/v1/auth/refresh",
                json={"refresh_token": pair["refresh_token"]},
                timeout=10,
            )
            assert refreshed.status_code == 401, refreshed.text


def test_two_admins_deactivating_each_other_never_deadlock(app: Flask, server: str) -> None:
    """Each round, two admins deactivate each other at once: one wins, never a 503."""
    root, one, two = make_admins(app, server, "root-admin", "admin-one", "admin-two")
    for _ in range(6):
        codes = sorted(
            r.status_code
            for r in at_once(
                set_active(server, one, two["id"], False), set_active(server, two, one["id"], False)
            )
        )
        # The loser acted after losing its role (403), or after its session died (401).
        assert codes[0] == 200 and codes[1] in (401, 403), codes
        for admin, name in ((one, "admin-one"), (two, "admin-two")):  # root restores both
            assert set_active(server, root, admin["id"], True)().status_code == 200
            admin["token"] = log_in(server, name)().json()["access_token"]
