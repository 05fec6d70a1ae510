"""The caller's account, public profiles and search over HTTP."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.database import db
from app.models import User
from tests.factories import PASSWORD, UserFactory
from tests.helpers import assert_problem

ME = "/api/v1/users/me"


def stored_user(app: Flask, user_id: int) -> dict[str, object]:
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        return {c.name: getattr(user, c.name) for c in User.__table__.columns}


class TestMe:
    def test_get_me_is_private_view(self, client: FlaskClient, users: UserFactory) -> None:
        user = users.create("bob")
        body = client.get(ME, headers=user.headers).get_json()
        assert body["id"] == user.id
        assert body["email"] == "bob@example.com"
        assert body["is_admin"] is False and body["is_active"] is True

    def test_requires_authentication(self, client: FlaskClient) -> None:
        assert_problem(client.get(ME), 401, "not_authenticated")

    def test_patch_display_name_and_username(self, client: FlaskClient, users: UserFactory) -> None:
        user = users.create("bob")
        response = client.patch(
            ME, json={"display_name": "  Robert  ", "username": "Robert_B"}, headers=user.headers
        )
        assert response.status_code == 200
        body = response.get_json()
        assert body["display_name"] == "Robert" and body["username"] == "Robert_B"
        # The new username logs in, in any case; the old one no longer does.
        assert (
            client.post(
                "/api/v1/auth/login", json={"login": "robert_b", "password": PASSWORD}
            ).status_code
            == 200
        )
        assert (
            client.post(
                "/api/v1/auth/login", json={"login": "bob", "password": PASSWORD}
            ).status_code
            == 401
        )

    def test_patch_own_username_case_only(self, client: FlaskClient, users: UserFactory) -> None:
        user = users.create("bob")
        response = client.patch(ME, json={"username": "BOB"}, headers=user.headers)
        assert response.status_code == 200 and response.get_json()["username"] == "BOB"

    def test_patch_taken_username_is_409(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        users.create("alice", login=False)
        bob = users.create("bob")
        assert_problem(
            client.patch(ME, json={"username": "ALICE"}, headers=bob.headers), 409, "conflict"
        )
        assert stored_user(app, bob.id)["username"] == "bob"

    @pytest.mark.parametrize(
        "body",
        [
            {"is_admin": True},
            {"email": "new@example.com"},
            {"id": 99},
            {"is_active": False},
            {"display_name": ""},
            {"display_name": "x" * 65},
            {"username": "no spaces"},
            {"display_name": None},
            {"display_name": 5},
        ],
    )
    def test_patch_rejects_read_only_and_invalid_fields(
        self, app: Flask, client: FlaskClient, users: UserFactory, body: dict[str, object]
    ) -> None:
        user = users.create("bob")
        before = stored_user(app, user.id)
        assert_problem(client.patch(ME, json=body, headers=user.headers), 422, "validation_error")
        assert stored_user(app, user.id) == before

    def test_delete_me_deactivates_and_kills_every_session(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create("bob")
        first = dict(user.headers)
        refresh = user.refresh_token
        users.login(user)
        assert (
            client.delete(ME, json={"password": PASSWORD}, headers=user.headers).status_code == 204
        )
        for headers in (first, user.headers):
            assert_problem(client.get(ME, headers=headers), 401, "token_revoked")
        assert_problem(client.post("/api/v1/auth/refresh", json={"refresh_token": refresh}), 401)
        assert stored_user(app, user.id)["is_active"] is False
        viewer = users.create("viewer")
        assert_problem(client.get(f"/api/v1/users/{user.id}", headers=viewer.headers), 404)

    def test_delete_me_wrong_password(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        user = users.create("bob")
        response = client.delete(ME, json={"password": "wrong password"}, headers=user.headers)
        assert_problem(response, 403, "invalid_credentials")
        assert stored_user(app, user.id)["is_active"] is True
        assert_problem(client.delete(ME, json={}, headers=user.headers), 422)


class TestPublicProfiles:
    def test_get_user_is_public_view(self, client: FlaskClient, users: UserFactory) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        body = client.get(f"/api/v1/users/{bob.id}", headers=alice.headers).get_json()
        assert set(body) == {"id", "username", "display_name", "created_at"}

    @pytest.mark.parametrize("path", ["999999", "0", "-1", "abc", "9" * 40, "1.5"])
    def test_unknown_ids_are_404(self, client: FlaskClient, users: UserFactory, path: str) -> None:
        alice = users.create("alice")
        assert_problem(client.get(f"/api/v1/users/{path}", headers=alice.headers), 404, "not_found")


class TestSearch:
    def _search(self, client: FlaskClient, headers: dict[str, str], **params: object):
        return client.get("/api/v1/users", query_string=params, headers=headers)

    def test_prefix_on_username_and_display_name_any_case(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        me = users.create("zed")
        users.create("alfred", login=False)
        alex = users.create("alex", login=False)
        users.create("bob", login=False)
        gone = users.create("alvin")
        client.patch(ME, json={"display_name": "Alpha Bob"}, headers=users.create("carl").headers)
        client.delete(ME, json={"password": PASSWORD}, headers=gone.headers)
        body = self._search(client, me.headers, q="AL").get_json()
        assert [u["username"] for u in body["items"]] == ["alex", "alfred", "carl"]
        assert body["next_cursor"] is None
        assert set(body["items"][0]) == {"id", "username", "display_name", "created_at"}
        assert body["items"][0]["id"] == alex.id

    def test_like_wildcards_are_literal(self, client: FlaskClient, users: UserFactory) -> None:
        me = users.create("a_b")
        users.create("axb", login=False)
        assert [
            u["username"] for u in self._search(client, me.headers, q="a_").get_json()["items"]
        ] == ["a_b"]
        assert self._search(client, me.headers, q="%").get_json()["items"] == []

    def test_paging_returns_every_match_once(self, client: FlaskClient, users: UserFactory) -> None:
        me = users.create("viewer")
        names = sorted(f"pat{i:02d}" for i in range(7))
        for name in names:
            users.create(name, login=False)
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, object] = {"q": "pat", "limit": 3}
            if cursor:
                params["cursor"] = cursor
            body = self._search(client, me.headers, **params).get_json()
            seen += [u["username"] for u in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
            users.create(f"pat{len(seen)}x", login=False)  # rows added while paging
        assert seen[:7] == names or set(names) <= set(seen)
        assert len(seen) == len(set(seen))

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"q": ""},
            {"q": "x" * 65},
            {"q": "a", "limit": 101},
            {"q": "a", "limit": 0},
            {"q": "a", "limit": "ten"},
            {"q": "a", "cursor": "garbage"},
            {"q": "a", "cursor": "eyJ4Ijox.fake"},
            {"q": "a\x00"},
        ],
    )
    def test_bad_queries_are_422(
        self, client: FlaskClient, users: UserFactory, params: dict[str, object]
    ) -> None:
        me = users.create("viewer")
        assert_problem(self._search(client, me.headers, **params), 422, "validation_error")


class TestAdmin:
    def test_non_admin_is_403(self, client: FlaskClient, users: UserFactory) -> None:
        user = users.create("bob")
        assert_problem(client.get("/api/v1/admin/users", headers=user.headers), 403, "forbidden")
        assert_problem(
            client.patch(
                f"/api/v1/admin/users/{user.id}", json={"is_admin": True}, headers=user.headers
            ),
            403,
        )

    def test_list_all_users_with_paging(self, client: FlaskClient, users: UserFactory) -> None:
        admin = users.create("root", admin=True)
        gone = users.create("gone")
        client.delete(ME, json={"password": PASSWORD}, headers=gone.headers)
        for i in range(3):
            users.create(f"u{i}x", login=False)
        first = client.get("/api/v1/admin/users?limit=2", headers=admin.headers).get_json()
        second = client.get(
            f"/api/v1/admin/users?limit=2&cursor={first['next_cursor']}", headers=admin.headers
        ).get_json()
        third = client.get(
            f"/api/v1/admin/users?limit=2&cursor={second['next_cursor']}", headers=admin.headers
        ).get_json()
        items = first["items"] + second["items"] + third["items"]
        assert third["next_cursor"] is None
        assert [u["username"] for u in items] == ["root", "gone", "u0x", "u1x", "u2x"]
        assert items[1]["is_active"] is False and "email" in items[1]

    def test_deactivate_kills_tokens_and_reactivate_allows_login(
        self, client: FlaskClient, users: UserFactory
    ) -> None:
        admin = users.create("root", admin=True)
        bob = users.create("bob")
        response = client.patch(
            f"/api/v1/admin/users/{bob.id}", json={"is_active": False}, headers=admin.headers
        )
        assert response.status_code == 200 and response.get_json()["is_active"] is False
        assert_problem(client.get(ME, headers=bob.headers), 401, "token_revoked")
        assert_problem(
            client.post("/api/v1/auth/login", json={"login": "bob", "password": PASSWORD}), 401
        )
        client.patch(
            f"/api/v1/admin/users/{bob.id}", json={"is_active": True}, headers=admin.headers
        )
        assert (
            client.post(
                "/api/v1/auth/login", json={"login": "bob", "password": PASSWORD}
            ).status_code
            == 200
        )
        # Reactivation does not bring the revoked session back.
        assert_problem(client.get(ME, headers=bob.headers), 401, "token_revoked")

    def test_promote_and_demote(self, client: FlaskClient, users: UserFactory) -> None:
        admin = users.create("root", admin=True)
        bob = users.create("bob")
        assert (
            client.patch(
                f"/api/v1/admin/users/{bob.id}", json={"is_admin": True}, headers=admin.headers
            ).get_json()["is_admin"]
            is True
        )
        assert client.get("/api/v1/admin/users", headers=bob.headers).status_code == 200
        assert (
            client.patch(
                f"/api/v1/admin/users/{bob.id}", json={"is_admin": False}, headers=admin.headers
            ).status_code
            == 200
        )
        assert_problem(client.get("/api/v1/admin/users", headers=bob.headers), 403)

    def test_last_admin_cannot_be_removed(self, client: FlaskClient, users: UserFactory) -> None:
        admin = users.create("root", admin=True)
        for body in ({"is_admin": False}, {"is_active": False}):
            assert_problem(
                client.patch(f"/api/v1/admin/users/{admin.id}", json=body, headers=admin.headers),
                409,
            )
        assert_problem(client.delete(ME, json={"password": PASSWORD}, headers=admin.headers), 409)
        assert client.get(ME, headers=admin.headers).get_json()["is_admin"] is True

    @pytest.mark.parametrize(
        "body",
        [
            {"is_admin": "yes"},
            {"is_active": 1},
            {"is_admin": 10**30},
            {"email": "x@y.z"},
            {"is_admin": None},
        ],
    )
    def test_admin_patch_validation(
        self, client: FlaskClient, users: UserFactory, body: dict[str, object]
    ) -> None:
        admin = users.create("root", admin=True)
        bob = users.create("bob")
        assert_problem(
            client.patch(f"/api/v1/admin/users/{bob.id}", json=body, headers=admin.headers), 422
        )

    def test_unknown_user(self, client: FlaskClient, users: UserFactory) -> None:
        admin = users.create("root", admin=True)
        assert_problem(
            client.patch(
                "/api/v1/admin/users/424242", json={"is_admin": True}, headers=admin.headers
            ),
            404,
        )
