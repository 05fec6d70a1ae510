"""BOLA matrix: outsiders and former members get the same 404 everywhere, and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.database import db
from app.models import Conversation, Member, Message
from tests.factories import ApiUser, Chat, UserFactory
from tests.helpers import assert_problem


def snapshot(app: Flask) -> dict[str, list[Any]]:
    with app.app_context():
        return {
            model.__tablename__: [
                tuple(row) for row in db.session.execute(sa.select(model.__table__)).all()
            ]
            for model in (Conversation, Member, Message)
        }


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
    before = snapshot(app)
    ids = {"cid": group["id"], "owner": owner.id, "me": caller.id}
    response = call(client, caller, method, path, body, ids)
    problem = assert_problem(response, 404, "not_found")
    assert "secret" not in response.get_data(as_text=True)
    assert snapshot(app) == before
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


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_requires_a_token(
    client: FlaskClient, method: str, path: str, body: Any
) -> None:
    response = client.open(
        path.format(cid=1, owner=1, me=1), method=method, json=body if body else None
    )
    assert_problem(response, 401, "not_authenticated")
