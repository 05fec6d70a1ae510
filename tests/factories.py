"""Test data builders: users created through the service or the API, and their tokens."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app.services import user_service

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@dataclass
class ApiUser:
    """A user with a live session."""

    id: int
    username: str
    email: str
    password: str
    access_token: str = ""
    refresh_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header of the current access token."""
        return {"Authorization": f"Bearer {self.access_token}"}


class UserFactory:
    """Create users and log them in."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app = app
        self.client = client

    def create(
        self, username: str | None = None, *, admin: bool = False, login: bool = True
    ) -> ApiUser:
        """Create a user through the service layer and (by default) log in through the API."""
        username = username or f"user{next(_counter)}"
        email = f"{username}@example.com"
        with self.app.app_context():
            user = user_service.create_user(email, username, PASSWORD, is_admin=admin)
            user_id = user.id
        test_user = ApiUser(user_id, username, email, PASSWORD)
        if login:
            self.login(test_user)
        return test_user

    def login(self, user: ApiUser, user_agent: str = "pytest") -> dict[str, Any]:
        """Log in and store the new tokens on ``user``; return the token pair."""
        response = self.client.post(
            "/api/v1/auth/login",
            json={"login": user.username, "password": user.password},
            headers={"User-Agent": user_agent},
        )
        assert response.status_code == 200, response.json
        pair: dict[str, Any] = response.get_json()
        user.access_token = pair["access_token"]
        user.refresh_token = pair["refresh_token"]
        return pair


class Chat:
    """Drive the conversation endpoints as a given user."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def direct(self, user: ApiUser, other: ApiUser) -> dict[str, Any]:
        """Start (or fetch) the direct conversation of two users."""
        response = self.client.post(
            "/api/v1/conversations",
            json={"kind": "direct", "member_ids": [other.id]},
            headers=user.headers,
        )
        assert response.status_code in (200, 201), response.get_json()
        body: dict[str, Any] = response.get_json()
        return body

    def group(self, owner: ApiUser, *members: ApiUser, title: str = "Group") -> dict[str, Any]:
        """Create a group owned by ``owner``."""
        response = self.client.post(
            "/api/v1/conversations",
            json={"kind": "group", "title": title, "member_ids": [m.id for m in members]},
            headers=owner.headers,
        )
        assert response.status_code == 201, response.get_json()
        body: dict[str, Any] = response.get_json()
        return body

    def send(
        self, user: ApiUser, conversation_id: int, body: str = "hello", **extra: Any
    ) -> dict[str, Any]:
        """Send a message and return it."""
        response = self.client.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"body": body, **extra},
            headers=user.headers,
        )
        assert response.status_code in (200, 201), response.get_json()
        message: dict[str, Any] = response.get_json()
        return message

    def get(self, user: ApiUser, conversation_id: int) -> dict[str, Any]:
        """Fetch a conversation as ``user``."""
        response = self.client.get(f"/api/v1/conversations/{conversation_id}", headers=user.headers)
        assert response.status_code == 200, response.get_json()
        body: dict[str, Any] = response.get_json()
        return body
