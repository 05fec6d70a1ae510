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
