"""Shared by the hostile-input suite: a whole-database snapshot and a cast of users.

Every case asserts three things: the status, a problem+json body with the expected code, and
that no row of any table changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.test import TestResponse

from app.database import db
from tests.factories import ApiUser, Chat, UserFactory
from tests.helpers import assert_problem


def database_state(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    with app.app_context():
        state = {}
        for table in db.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = db.session.execute(sa.select(table).order_by(*order)).all()
            state[table.name] = [tuple(row) for row in rows]
        db.session.remove()
        return state


def assert_refused(
    app: Flask,
    before: dict[str, list[tuple[Any, ...]]],
    response: TestResponse,
    status: int,
    code: str | None = None,
) -> dict[str, Any]:
    """Assert a problem+json refusal and that the database is exactly as it was."""
    body = assert_problem(response, status, code)
    assert database_state(app) == before
    return body


@dataclass
class World:
    """Alice owns a group with Bob; Dave left it; Carol is in nothing; Root is an admin."""

    alice: ApiUser
    bob: ApiUser
    carol: ApiUser
    dave: ApiUser
    root: ApiUser
    group_id: int
    direct_id: int


@pytest.fixture
def world(users: UserFactory, chat: Chat) -> World:
    """The cast, with a group holding one message and a direct conversation."""
    alice, bob, carol, dave = (users.create(n) for n in ("alice", "bob", "carol", "dave"))
    root = users.create("root", admin=True)
    group = chat.group(alice, bob, dave, title="Plans")
    chat.send(alice, group["id"], "secret plans")
    chat.client.delete(
        f"/api/v1/conversations/{group['id']}/members/{dave.id}", headers=dave.headers
    )
    direct = chat.direct(alice, bob)
    return World(alice, bob, carol, dave, root, group["id"], direct["id"])
