"""Authorization from outside: outsiders and former members get the same 404 on every object
endpoint, members cannot act as owners or senders, users cannot use admin endpoints, and
nothing changes in any of these cases."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import ApiUser, Chat, UserFactory
from tests.helpers import assert_problem
from tests.security.conftest import World, assert_refused, database_state

ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/conversations/{cid}", None),
    ("PATCH", "/api/v1/conversations/{cid}", {"title": "hijacked"}),
    ("GET", "/api/v1/conversations/{cid}/members", None),
    ("POST", "/api/v1/conversations/{cid}/members", {"user_ids": ["{me}"]}),
    ("DELETE", "/api/v1/conversations/{cid}/members/{owner}", None),
    ("DELETE", "/api/v1/conversations/{cid}/members/{me}", None),
    ("POST", "/api/v1/conversations/{cid}/read", {"seq": 1}),
    ("POST", "/api/v1/conversations/{cid}/unread", {"seq": 1}),
    ("GET", "/api/v1/conversations/{cid}/messages", None),
    ("POST", "/api/v1/conversations/{cid}/messages", {"body": "let me in", "client_id": "x"}),
    ("GET", "/api/v1/conversations/{cid}/messages/1", None),
    ("PATCH", "/api/v1/conversations/{cid}/messages/1", {"body": "edited"}),
    ("DELETE", "/api/v1/conversations/{cid}/messages/1", None),
]


def call(
    client: FlaskClient, user: ApiUser, method: str, path: str, body: Any, ids: dict[str, int]
):  # type: ignore[no-untyped-def]
    def fill(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            return ids[value[1:-1]]
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    return client.open(path.format(**ids), method=method, json=fill(body), headers=user.headers)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("who", ["outsider", "former_member"])
def test_non_members_get_404_and_nothing_changes(
    app: Flask,
    client: FlaskClient,
    users: UserFactory,
    chat: Chat,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    who: str,
) -> None:
    owner, member, former, outsider = (
        users.create(n) for n in ("owner", "member", "former", "outsider")
    )
    group = chat.group(owner, member, former)
    chat.send(owner, group["id"], "secret plans")
    client.delete(
        f"/api/v1/conversations/{group['id']}/members/{former.id}", headers=former.headers
    )
    caller = outsider if who == "outsider" else former
    before = database_state(app)
    ids = {"cid": group["id"], "owner": owner.id, "me": caller.id}
    response = call(client, caller, method, path, body, ids)
    problem = assert_problem(response, 404, "not_found")
    assert "secret" not in response.get_data(as_text=True)
    assert database_state(app) == before
    # The same answer as for a conversation id that does not exist.
    missing = call(client, caller, method, path, body, {**ids, "cid": 987654})
    assert missing.status_code == 404
    assert missing.get_json()["detail"] == problem["detail"]


def test_conversation_list_shows_only_own(
    client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob, eve = users.create("alice"), users.create("bob"), users.create("eve")
    chat.direct(alice, bob)
    assert client.get("/api/v1/conversations", headers=eve.headers).get_json()["items"] == []


#: Endpoints open without a token, as API.md lists them; every other route must refuse one.
PUBLIC_ENDPOINTS = {
    "auth.register",
    "auth.login",
    "auth.token",
    "auth.refresh",
    "auth.request_password_reset",
    "auth.confirm_password_reset",
    "health.healthz",
    "health.readyz",
    "metrics",  # guarded by METRICS_TOKEN when one is set, see tests/core/test_metrics.py
    "api-docs.openapi_json",
    "api-docs.openapi_swagger_ui",
    "swagger_ui_asset",
}


def _routes() -> list[tuple[str, str, str]]:
    """Every (endpoint, method, path) the app serves, path parameters filled with 1."""
    from app import create_app
    from config import TestingConfig

    routes = []
    for rule in create_app(TestingConfig).url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "1", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, path))
    return routes


ROUTES = _routes()


@pytest.mark.parametrize(
    ("method", "path"),
    [(method, path) for endpoint, method, path in ROUTES if endpoint not in PUBLIC_ENDPOINTS],
    ids=[f"{m} {e}" for e, m, _ in ROUTES if e not in PUBLIC_ENDPOINTS],
)
def test_every_endpoint_requires_a_token(client: FlaskClient, method: str, path: str) -> None:
    """Derived from the URL map: a new route that forgets its guard fails here."""
    response = client.open(path, method=method, json={} if method != "GET" else None)
    assert_problem(response, 401, "not_authenticated")


def test_the_route_list_is_the_whole_api() -> None:
    endpoints = {endpoint for endpoint, _, _ in ROUTES}
    assert PUBLIC_ENDPOINTS <= endpoints  # no stale exemption
    assert len(endpoints - PUBLIC_ENDPOINTS) >= 25


#: (case id, method, path, body): a member who is not the owner or the sender; each a 403.
MEMBER_FORBIDDEN: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("rename-group", "PATCH", "/api/v1/conversations/{group}", {"title": "mine now"}),
    ("add-members", "POST", "/api/v1/conversations/{group}/members", {"user_ids": ["{carol}"]}),
    ("remove-owner", "DELETE", "/api/v1/conversations/{group}/members/{alice}", None),
    ("edit-others-message", "PATCH", "/api/v1/conversations/{group}/messages/1", {"body": "x"}),
    ("delete-others-message", "DELETE", "/api/v1/conversations/{group}/messages/1", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [case[1:] for case in MEMBER_FORBIDDEN],
    ids=[case[0] for case in MEMBER_FORBIDDEN],
)
def test_members_cannot_act_as_owner_or_sender(
    app: Flask, client: FlaskClient, world: World, method: str, path: str, body: Any
) -> None:
    ids = {"group": world.group_id, "alice": world.alice.id, "carol": world.carol.id}
    before = database_state(app)
    response = call(client, world.bob, method, path, body, ids)
    assert_refused(app, before, response, 403, "forbidden")


ADMIN_ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/admin/users", None),
    ("PATCH", "/api/v1/admin/users/{bob}", {"is_admin": True}),
    ("PATCH", "/api/v1/admin/users/{alice}", {"is_active": False}),
    ("PATCH", "/api/v1/admin/users/{root}", {"is_admin": False}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ENDPOINTS)
def test_admin_endpoints_refuse_users(
    app: Flask, client: FlaskClient, world: World, method: str, path: str, body: Any
) -> None:
    ids = {"alice": world.alice.id, "bob": world.bob.id, "root": world.root.id}
    before = database_state(app)
    response = call(client, world.bob, method, path, body, ids)
    assert_refused(app, before, response, 403, "forbidden")


def test_another_users_session_cannot_be_revoked(
    app: Flask, client: FlaskClient, world: World
) -> None:
    sessions = client.get("/api/v1/auth/sessions", headers=world.alice.headers).get_json()
    before = database_state(app)
    for session in sessions["items"]:
        response = client.delete(
            f"/api/v1/auth/sessions/{session['id']}", headers=world.bob.headers
        )
        assert_refused(app, before, response, 404, "not_found")
    assert client.get("/api/v1/users/me", headers=world.alice.headers).status_code == 200
