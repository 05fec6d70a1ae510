"""Bearer-token authentication for the API, on flask-jwt-extended's public API.

``auth_required`` is ``verify_jwt_in_request()``: the library reads the header, verifies the
token and its type, and asks :func:`_session_has_ended` (its blocklist callback) whether the
token's session was revoked, on every request. Its helpers (``get_jwt()``,
``get_jwt_identity()``) work in every view behind the guard, and its header settings apply.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Response, g
from flask_jwt_extended import JWTManager, get_jwt, get_jwt_identity, verify_jwt_in_request

from app.core.errors import UnauthorizedError
from app.services import auth_service

P = ParamSpec("P")
R = TypeVar("R")


def auth_required(fn: Callable[P, R]) -> Callable[P, R]:
    """Require a live access token (put it right under the route, which documents it).

    Also records the caller as ``g.user_id``, for the access log and per-user rate limits.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        verified = verify_jwt_in_request()  # None only for JWT_EXEMPT_METHODS (OPTIONS)
        if verified is not None:
            g.user_id = int(verified[1]["sub"])
        return fn(*args, **kwargs)

    wrapper.requires_token = True  # type: ignore[attr-defined]
    return wrapper


def current_user_id() -> int:
    """Return the id of the authenticated caller."""
    return int(get_jwt_identity())


def current_session_id() -> int:
    """Return the session id of the caller's access token."""
    return int(get_jwt()["sid"])


def current_claims() -> dict[str, Any]:
    """Return the claims of the caller's access token (a copy)."""
    return dict(get_jwt())


def _session_has_ended(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
    """Tell whether the token's session is dead (revoked, expired, or not this user's)."""
    return not auth_service.check_access(payload)


def _not_authenticated(_reason: str) -> Response:
    return UnauthorizedError(
        "Authentication is required (Authorization: Bearer <token>)."
    ).to_response()


def _invalid_token(_reason: str) -> Response:
    return UnauthorizedError("The access token is invalid.", code="token_invalid").to_response()


def _expired_token(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
    return UnauthorizedError("The access token has expired.", code="token_expired").to_response()


def _revoked_token(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
    return UnauthorizedError(
        "The session of this token has ended.", code="token_revoked"
    ).to_response()


def init_jwt(manager: JWTManager) -> None:
    """Check the session of every token; make every token failure a 401 problem."""
    manager.token_in_blocklist_loader(_session_has_ended)
    manager.unauthorized_loader(_not_authenticated)
    manager.invalid_token_loader(_invalid_token)
    manager.expired_token_loader(_expired_token)
    manager.revoked_token_loader(_revoked_token)
