"""Register, login, refresh rotation, logout, sessions and password change over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.database import db
from app.database.base import utcnow
from app.models import AuthSession, User
from tests.conftest import clean_database, make_app
from tests.factories import PASSWORD, UserFactory
from tests.helpers import assert_problem

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/users/me"


def count_users(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(User)) or 0


def register(client: FlaskClient, **fields: object):
    body = {"email": "Alice@Example.COM", "username": "Alice", "password": PASSWORD}
    body.update(fields)
    return client.post(REGISTER, json={k: v for k, v in body.items() if v is not None})


class TestRegister:
    def test_creates_account_and_returns_private_view(self, client: FlaskClient) -> None:
        response = register(client, email="  Alice@Example.COM ")
        assert response.status_code == 201
        body = response.get_json()
        assert set(body) == {
            "id",
            "username",
            "display_name",
            "created_at",
            "email",
            "is_admin",
            "is_active",
            "show_presence",
        }
        assert body["email"] == "alice@example.com"
        assert body["username"] == "Alice"
        assert body["display_name"] == "Alice"
        assert body["is_admin"] is False and body["is_active"] is True
        assert body["show_presence"] is True
        assert body["created_at"].endswith("Z")
        assert response.headers["Location"].endswith(f"/api/v1/users/{body['id']}")
        assert "password" not in body and "password_hash" not in body

    def test_display_name_is_trimmed(self, client: FlaskClient) -> None:
        response = register(client, display_name="  Alice A.  ")
        assert response.get_json()["display_name"] == "Alice A."

    @pytest.mark.parametrize(
        "fields",
        [
            {"email": "ALICE@example.com", "username": "other"},
            {"email": "other@example.com", "username": "aLiCe"},
        ],
    )
    def test_duplicate_email_or_username_is_409(
        self, app: Flask, client: FlaskClient, fields: dict[str, str]
    ) -> None:
        assert register(client).status_code == 201
        assert_problem(register(client, **fields), 409, "conflict")
        assert count_users(app) == 1

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"email": "not-an-email"}, "email"),
            ({"email": "a" * 250 + "@x.io"}, "email"),
            ({"username": "ab"}, "username"),
            ({"username": "a" * 33}, "username"),
            ({"username": "bad name"}, "username"),
            ({"username": "émile"}, "username"),
            ({"password": "short"}, "password"),
            ({"password": "p" * 129}, "password"),
            ({"display_name": "d" * 65}, "display_name"),
            ({"display_name": "   "}, "display_name"),
            ({"email": 42}, "email"),
            ({"password": ["a list"]}, "password"),
            ({"is_admin": True}, "is_admin"),
            ({"id": 7}, "id"),
            ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ],
    )
    def test_invalid_or_read_only_fields_are_422_and_nothing_stored(
        self, app: Flask, client: FlaskClient, fields: dict[str, object], field: str
    ) -> None:
        body = assert_problem(register(client, **fields), 422, "validation_error")
        assert field in body["errors"]["json"]
        assert count_users(app) == 0

    def test_missing_fields_are_listed(self, client: FlaskClient) -> None:
        body = assert_problem(client.post(REGISTER, json={}), 422, "validation_error")
        assert set(body["errors"]["json"]) == {"email", "username", "password"}

    def test_boundaries_are_accepted(self, client: FlaskClient) -> None:
        response = register(
            client,
            email="e" * 240 + "@example.com",
            username="a" * 32,
            password="p" * 128,
            display_name="d" * 64,
        )
        assert response.status_code == 201, response.get_json()


class TestLogin:
    def test_login_by_username_or_email_any_case(
        self, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create("bob", login=False)
        for login in ("bob", "BOB", "bob@example.com", " Bob@Example.com "):
            response = client.post(LOGIN, json={"login": login, "password": PASSWORD})
            assert response.status_code == 200, login
            pair = response.get_json()
            assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
            assert pair["token_type"] == "Bearer"
            assert pair["expires_in"] == 900
            assert response.headers["Cache-Control"] == "no-store"
        me = client.get(ME, headers={"Authorization": f"Bearer {pair['access_token']}"})
        assert me.get_json()["id"] == user.id

    def test_failures_are_indistinguishable(self, client: FlaskClient, users: UserFactory) -> None:
        users.create("bob", login=False)
        gone = users.create("gone")
        assert (
            client.delete(ME, json={"password": PASSWORD}, headers=gone.headers).status_code == 204
        )
        bodies = []
        for login, password in [
            ("bob", "wrong password!"),
            ("nobody", PASSWORD),
            ("gone", PASSWORD),
        ]:
            response = client.post(LOGIN, json={"login": login, "password": password})
            body = assert_problem(response, 401, "invalid_credentials")
            assert response.headers["WWW-Authenticate"] == "Bearer"
            bodies.append((body["title"], body["detail"]))
        assert len(set(bodies)) == 1

    def test_corrupt_stored_hash_is_a_failed_login(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create("bob", login=False)
        for broken in (
            "",
            "scrypt:1:1:1$x$y",
            "md5$abc$def",
            "garbage",
            "scrypt:99999999999:8:1$s$h",
        ):
            with app.app_context():
                db.session.execute(
                    sa.update(User).where(User.id == user.id).values(password_hash=broken)
                )
                db.session.commit()
            response = client.post(LOGIN, json={"login": "bob", "password": PASSWORD})
            assert_problem(response, 401, "invalid_credentials")

    def test_hash_is_upgraded_when_parameters_change(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create("bob", login=False)
        app.config["PASSWORD_HASH_METHOD"] = "scrypt:2048:8:1"
        assert client.post(LOGIN, json={"login": "bob", "password": PASSWORD}).status_code == 200
        with app.app_context():
            stored = db.session.get(User, user.id).password_hash
        assert stored.startswith("scrypt:2048:8:1$")
        assert client.post(LOGIN, json={"login": "bob", "password": PASSWORD}).status_code == 200


class TestRefresh:
    def test_rotation_issues_a_new_pair_and_spends_the_old_token(
        self, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create()
        response = client.post(REFRESH, json={"refresh_token": user.refresh_token})
        assert response.status_code == 200
        pair = response.get_json()
        assert pair["refresh_token"] != user.refresh_token
        assert (
            client.get(ME, headers={"Authorization": f"Bearer {pair['access_token']}"}).status_code
            == 200
        )
        again = client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
        assert again.status_code == 200

    def test_reuse_revokes_the_whole_session(self, client: FlaskClient, users: UserFactory) -> None:
        user = users.create()
        first = client.post(REFRESH, json={"refresh_token": user.refresh_token}).get_json()
        second = client.post(REFRESH, json={"refresh_token": first["refresh_token"]}).get_json()
        # The spent first token comes back: theft is assumed, the session dies.
        reuse = client.post(REFRESH, json={"refresh_token": user.refresh_token})
        assert_problem(reuse, 401, "token_revoked")
        for token in (user.access_token, first["access_token"], second["access_token"]):
            assert_problem(
                client.get(ME, headers={"Authorization": f"Bearer {token}"}), 401, "token_revoked"
            )
        assert_problem(
            client.post(REFRESH, json={"refresh_token": second["refresh_token"]}),
            401,
            "token_revoked",
        )

    def test_reuse_does_not_touch_other_sessions(
        self, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create()
        spent = user.refresh_token
        phone = users.login(user, user_agent="phone")
        client.post(REFRESH, json={"refresh_token": spent})
        client.post(REFRESH, json={"refresh_token": spent})
        headers = {"Authorization": f"Bearer {phone['access_token']}"}
        assert client.get(ME, headers=headers).status_code == 200

    def test_unknown_refresh_token_is_invalid(self, client: FlaskClient) -> None:
        assert_problem(client.post(REFRESH, json={"refresh_token": "nope"}), 401, "token_invalid")

    def test_expired_refresh_token(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        app.config["REFRESH_TOKEN_EXPIRES"] = timedelta(seconds=-1)
        user = users.create()
        assert_problem(
            client.post(REFRESH, json={"refresh_token": user.refresh_token}), 401, "token_expired"
        )

    def test_access_token_is_not_a_refresh_token(
        self, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create()
        assert_problem(
            client.post(REFRESH, json={"refresh_token": user.access_token}), 401, "token_invalid"
        )

    def test_refresh_token_is_not_an_access_token(
        self, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create()
        response = client.get(ME, headers={"Authorization": f"Bearer {user.refresh_token}"})
        assert_problem(response, 401, "token_invalid")
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


class TestLogoutAndSessions:
    def test_logout_kills_access_and_refresh_tokens_at_once(
        self, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create()
        assert client.post("/api/v1/auth/logout", headers=user.headers).status_code == 204
        assert_problem(client.get(ME, headers=user.headers), 401, "token_revoked")
        assert_problem(
            client.post(REFRESH, json={"refresh_token": user.refresh_token}), 401, "token_revoked"
        )

    def test_session_ids_are_never_reused_after_prune(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        """A pruned session's id never comes back: its logged-out tokens stay dead for good."""
        user = users.create()
        dead_headers, dead_refresh = dict(user.headers), user.refresh_token
        [dead] = client.get("/api/v1/auth/sessions", headers=user.headers).get_json()["items"]
        assert client.post("/api/v1/auth/logout", headers=user.headers).status_code == 204
        pruned = app.test_cli_runner().invoke(args=["auth", "prune"])
        assert pruned.exit_code == 0 and "pruned 1 session" in pruned.output
        users.login(user)  # the newest session was deleted: on SQLite its id was free again
        [fresh] = client.get("/api/v1/auth/sessions", headers=user.headers).get_json()["items"]
        assert fresh["id"] > dead["id"]
        assert_problem(client.get(ME, headers=dead_headers), 401, "token_revoked")
        assert_problem(client.post(REFRESH, json={"refresh_token": dead_refresh}), 401)

    def test_logout_requires_a_token(self, client: FlaskClient) -> None:
        response = client.post("/api/v1/auth/logout")
        assert_problem(response, 401, "not_authenticated")
        assert response.headers["WWW-Authenticate"] == "Bearer"

    def test_list_sessions_marks_the_current_one(
        self, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create()
        laptop = users.login(user, user_agent="laptop browser")
        response = client.get(
            "/api/v1/auth/sessions", headers={"Authorization": f"Bearer {laptop['access_token']}"}
        )
        items = response.get_json()["items"]
        assert len(items) == 2
        assert [s["current"] for s in items] == [True, False]
        assert items[0]["user_agent"] == "laptop browser"
        assert set(items[0]) == {"id", "created_at", "last_used_at", "user_agent", "current"}

    def test_revoke_one_session(self, client: FlaskClient, users: UserFactory) -> None:
        user = users.create()
        first_headers = dict(user.headers)
        users.login(user)
        sessions = client.get("/api/v1/auth/sessions", headers=user.headers).get_json()["items"]
        other = next(s for s in sessions if not s["current"])
        assert (
            client.delete(f"/api/v1/auth/sessions/{other['id']}", headers=user.headers).status_code
            == 204
        )
        assert_problem(client.get(ME, headers=first_headers), 401, "token_revoked")
        assert client.get(ME, headers=user.headers).status_code == 200
        remaining = client.get("/api/v1/auth/sessions", headers=user.headers).get_json()["items"]
        assert [s["id"] for s in remaining] == [s["id"] for s in sessions if s["current"]]
        # Revoking it again: it no longer exists as a live session.
        assert_problem(
            client.delete(f"/api/v1/auth/sessions/{other['id']}", headers=user.headers), 404
        )

    def test_another_users_session_is_not_found(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        bob_session = client.get("/api/v1/auth/sessions", headers=bob.headers).get_json()["items"][
            0
        ]
        response = client.delete(
            f"/api/v1/auth/sessions/{bob_session['id']}", headers=alice.headers
        )
        assert_problem(response, 404, "not_found")
        assert client.get(ME, headers=bob.headers).status_code == 200

    def test_last_used_at_moves_when_stale(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create()
        stale = utcnow() - timedelta(hours=1)
        with app.app_context():
            db.session.execute(sa.update(AuthSession).values(last_used_at=stale))
            db.session.commit()
        client.get(ME, headers=user.headers)
        with app.app_context():
            seen = db.session.scalar(sa.select(AuthSession.last_used_at))
        assert seen is not None and seen > stale + timedelta(minutes=59)


class TestPasswordChange:
    URL = "/api/v1/auth/password"

    def test_change_revokes_other_sessions_and_keeps_this_one(
        self, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create()
        old_headers = dict(user.headers)
        other = users.login(user, user_agent="other")
        current_headers = {"Authorization": f"Bearer {other['access_token']}"}
        new_password = "a brand new password"
        response = client.post(
            self.URL,
            json={"current_password": PASSWORD, "new_password": new_password},
            headers=current_headers,
        )
        assert response.status_code == 204
        assert client.get(ME, headers=current_headers).status_code == 200
        assert_problem(client.get(ME, headers=old_headers), 401, "token_revoked")
        assert_problem(
            client.post(LOGIN, json={"login": user.username, "password": PASSWORD}),
            401,
            "invalid_credentials",
        )
        assert (
            client.post(LOGIN, json={"login": user.username, "password": new_password}).status_code
            == 200
        )

    def test_wrong_current_password_is_403_and_nothing_changes(
        self, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create()
        response = client.post(
            self.URL,
            json={"current_password": "not my password", "new_password": "a brand new password"},
            headers=user.headers,
        )
        assert_problem(response, 403, "invalid_credentials")
        assert (
            client.post(LOGIN, json={"login": user.username, "password": PASSWORD}).status_code
            == 200
        )

    def test_new_password_rules(self, client: FlaskClient, users: UserFactory) -> None:
        user = users.create()
        response = client.post(
            self.URL,
            json={"current_password": PASSWORD, "new_password": "short"},
            headers=user.headers,
        )
        assert "new_password" in assert_problem(response, 422)["errors"]["json"]


def test_location_is_a_path_behind_a_tls_proxy(database_url: str, _schema: None) -> None:
    # Parley writes no absolute URL, so the public scheme and host need no configuration.
    app = make_app(database_url, TRUSTED_PROXIES=1)
    try:
        response = app.test_client().post(
            REGISTER,
            json={"email": "p@example.com", "username": "proxied", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example.com"},
        )
        assert response.status_code == 201
        assert response.headers["Location"] == f"/api/v1/users/{response.get_json()['id']}"
    finally:
        clean_database(app)
