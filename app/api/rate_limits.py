"""Rate-limit decorators for the routes, keyed by client IP, by account, or by user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, g, request

from app.extensions import limiter


def _auth_limit() -> str:
    return str(current_app.config["RATELIMIT_AUTH"])


def _message_limit() -> str:
    return str(current_app.config["RATELIMIT_MESSAGES"])


def _account_key(*fields: str) -> Callable[[], str]:
    """Key a limit on the account a request names (its login, username or email field)."""

    def key() -> str:
        body: Any = request.get_json(silent=True) if request.is_json else request.form
        value = ""
        if hasattr(body, "get"):
            value = next((str(body.get(f)) for f in fields if body.get(f)), "")
        return "account:" + value.strip().lower()[:254]

    return key


def _user_key() -> str:
    return f"user:{g.user_id}"


def per_ip_and_account(*fields: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit attempts per client IP and, separately, per named account."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        view = limiter.limit(_auth_limit, key_func=_account_key(*fields), scope="account")(view)
        return limiter.limit(_auth_limit, scope="ip")(view)

    return decorate


def per_ip() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit attempts per client IP."""
    return limiter.limit(_auth_limit, scope="ip")


def per_user_sends() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit message sending per authenticated user (apply inside ``auth_required``)."""
    return limiter.limit(_message_limit, key_func=_user_key, scope="send")
