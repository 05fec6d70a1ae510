"""Bearer-token authentication for the API: the guard decorator and flask-jwt-extended hooks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Response, g
from flask_jwt_extended import JWTManager, get_jwt, verify_jwt_in_request

from app.core.errors import UnauthorizedError
from app.services import auth_service

P = ParamSpec("P")
R = TypeVar("R")

#: OpenAPI security requirement of protected operations.
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"oauth2": []}]


def auth_required(fn: Callable[P, R]) -> Callable[P, R]:
    """Require a live access token; sets ``g.user_id`` and ``g.session_id``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        verify_jwt_in_request()
        claims = get_jwt()
        g.user_id = int(claims["sub"])
        g.session_id = int(claims["sid"])
        return fn(*args, **kwargs)

    apidoc = dict(getattr(wrapper, "_apidoc", {}))
    apidoc["manual_doc"] = {**apidoc.get("manual_doc", {}), "security": BEARER}
    wrapper._apidoc = apidoc  # type: ignore[attr-defined]
    return wrapper


def current_user_id() -> int:
    """Return the id of the authenticated caller."""
    return int(g.user_id)


def current_session_id() -> int:
    """Return the session id of the caller's access token."""
    return int(g.session_id)


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


def _session_ended(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
    return not auth_service.check_access(payload)


def init_jwt(jwt: JWTManager) -> None:
    """Make every token failure a 401 problem, and check each token's session per request."""
    jwt.unauthorized_loader(_not_authenticated)
    jwt.invalid_token_loader(_invalid_token)
    jwt.expired_token_loader(_expired_token)
    jwt.revoked_token_loader(_revoked_token)
    jwt.token_in_blocklist_loader(_session_ended)
