"""Rate-limit decorators for the routes, keyed by client IP, by account, or by user.

Every endpoint that checks a password (login, the token endpoint's password grant, password
change, account deletion) counts its attempts in one bucket per account, whichever way the
request names it: ``alice``, ``Alice`` and ``alice@example.com`` are one account, and a signed-in
request is its user's account. A request that names no account (a refresh grant) is limited by
client IP alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, g, request

from app.extensions import limiter
from app.services import user_service

#: The shared bucket of password checks, per account.
PASSWORD_SCOPE = "password-attempts"


def _auth_limit() -> str:
    return str(current_app.config["RATELIMIT_AUTH"])


def _message_limit() -> str:
    return str(current_app.config["RATELIMIT_MESSAGES"])


def _named(field: str) -> str:
    """Return the value of ``field`` in the request's JSON or form body ('' when absent)."""
    body: Any = request.get_json(silent=True) if request.is_json else request.form
    value = body.get(field) if hasattr(body, "get") else None
    return value.strip() if isinstance(value, str) else ""


def _account_of(field: str) -> Callable[[], str]:
    def key() -> str:
        return user_service.account_key(_named(field))

    return key


def _names_no_account(field: str) -> Callable[[], bool]:
    def exempt() -> bool:
        return not _named(field)

    return exempt


def _user_key() -> str:
    """Key the signed-in caller as :func:`user_service.account_key` keys its account."""
    return f"user:{g.user_id}"


def per_ip() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit attempts per client IP."""
    return limiter.limit(_auth_limit, scope="ip")


def per_ip_and_account(field: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit attempts per client IP and, separately, per account named by ``field``.

    For endpoints that do not check a password (register, password reset): the per-account
    bucket is this endpoint's own.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        view = limiter.limit(
            _auth_limit,
            key_func=_account_of(field),
            scope="account",
            exempt_when=_names_no_account(field),
        )(view)
        return per_ip()(view)

    return decorate


def per_ip_and_password_account(field: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit password checks per client IP and in the account's shared bucket (see module)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        view = limiter.shared_limit(
            _auth_limit,
            scope=PASSWORD_SCOPE,
            key_func=_account_of(field),
            exempt_when=_names_no_account(field),
        )(view)
        return per_ip()(view)

    return decorate


def per_signed_in_password_account() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Count in the caller's shared bucket of password checks (apply inside ``auth_required``)."""
    return limiter.shared_limit(_auth_limit, scope=PASSWORD_SCOPE, key_func=_user_key)


def per_user_sends() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit message sending per authenticated user (apply inside ``auth_required``)."""
    return limiter.limit(_message_limit, key_func=_user_key, scope="send")
