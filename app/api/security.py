"""Bearer-token authentication for the API: the guard decorator and the token error answers."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Response, g, request
from flask_jwt_extended import JWTManager
from flask_jwt_extended.exceptions import (
    InvalidHeaderError,
    NoAuthorizationError,
    RevokedTokenError,
    WrongTokenError,
)

from app.core.errors import UnauthorizedError
from app.extensions import jwt
from app.services import auth_service

P = ParamSpec("P")
R = TypeVar("R")

#: OpenAPI security requirement of protected operations.
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"oauth2": []}]

_FIELDS = re.compile(r",\s*")


def auth_required(fn: Callable[P, R]) -> Callable[P, R]:
    """Require a live access token; sets ``g.user_id``, ``g.session_id`` and ``g.claims``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        authenticate()
        return fn(*args, **kwargs)

    apidoc = dict(getattr(wrapper, "_apidoc", {}))
    apidoc["manual_doc"] = {**apidoc.get("manual_doc", {}), "security": BEARER}
    wrapper._apidoc = apidoc  # type: ignore[attr-defined]
    return wrapper


def authenticate() -> None:
    """Check the request's access token and its session, as flask-jwt-extended would.

    The header is read as flask-jwt-extended reads ``Authorization: Bearer <JWT>`` (its
    ``headers`` location), the token is verified (:meth:`app.extensions.JWTManager.verify`),
    refresh tokens are refused, and the token's session must be live. Failures raise
    flask-jwt-extended's exceptions, which its error handlers turn into the 401 problems below.
    """
    header, claims = jwt.verify(_bearer_token())
    if claims.get("type") == "refresh":
        raise WrongTokenError("Only non-refresh tokens are allowed")
    if not auth_service.check_access(claims):
        raise RevokedTokenError(header, claims)
    g.claims = claims
    g.user_id = int(claims["sub"])
    g.session_id = int(claims["sid"])


def _bearer_token() -> str:
    """Return the JWT of ``Authorization: Bearer <JWT>`` (which may hold comma-separated fields)."""
    value = request.headers.get("Authorization", "").strip().strip(",")
    if not value:
        raise NoAuthorizationError("Missing Authorization Header")
    # RFC 7235: the auth scheme is case-insensitive (``bearer`` and ``BEARER`` are ``Bearer``).
    bearer = [f for f in _FIELDS.split(value) if f and f.split()[0].lower() == "bearer"]
    if len(bearer) != 1:
        raise NoAuthorizationError(
            "Missing 'Bearer' type in 'Authorization' header. "
            "Expected 'Authorization: Bearer <JWT>'"
        )
    parts = bearer[0].split()
    if len(parts) != 2:
        raise InvalidHeaderError("Bad Authorization header. Expected 'Authorization: Bearer <JWT>'")
    return parts[1]


def current_user_id() -> int:
    """Return the id of the authenticated caller."""
    return int(g.user_id)


def current_session_id() -> int:
    """Return the session id of the caller's access token."""
    return int(g.session_id)


def current_claims() -> dict[str, Any]:
    """Return the claims of the caller's access token (a copy)."""
    return dict(g.claims)


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
    """Make every token failure a 401 problem."""
    manager.unauthorized_loader(_not_authenticated)
    manager.invalid_token_loader(_invalid_token)
    manager.expired_token_loader(_expired_token)
    manager.revoked_token_loader(_revoked_token)
