"""Password hashing and opaque-token helpers."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar, cast

from werkzeug.security import check_password_hash, generate_password_hash

from app.core.utils import on_gevent

T = TypeVar("T")


def off_the_event_loop(work: Callable[..., T], *args: Any) -> T:
    """Run CPU-heavy ``work`` so that it stalls no other request.

    Under gevent (the production worker on PostgreSQL) every request of a worker shares one OS
    thread: tens of milliseconds of scrypt there would stall every other request and stream of
    the worker. ``hashlib.scrypt`` releases the GIL, so on gevent's pool of real threads it runs
    beside them (and on the second core). Elsewhere (threads, tests) it runs in place.
    """
    if on_gevent():
        import gevent

        return cast(T, gevent.get_hub().threadpool.apply(work, args))
    return work(*args)


def hash_password(password: str, method: str) -> str:
    """Hash a password with werkzeug using ``method`` (e.g. ``scrypt:65536:8:2``)."""
    return off_the_event_loop(_hash, password, method)


def _hash(password: str, method: str) -> str:
    return generate_password_hash(password, method=method)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password; an unknown, corrupt or missing stored hash is simply a mismatch."""
    if not stored_hash:
        return False
    return off_the_event_loop(_check, stored_hash, password)


def _check(stored_hash: str, password: str) -> bool:
    try:
        return check_password_hash(stored_hash, password)
    except (ValueError, TypeError, OverflowError, MemoryError):
        return False


def hash_needs_update(stored_hash: str, method: str) -> bool:
    """Tell whether a stored hash was made with other parameters than ``method``."""
    return stored_hash.split("$", 1)[0] != method


@functools.lru_cache(maxsize=4)
def _dummy_hash(method: str) -> str:
    return hash_password(secrets.token_urlsafe(16), method)


def burn_password_check(password: str, method: str) -> None:
    """Spend the time of a real password check, for logins that fail before one is made."""
    verify_password(_dummy_hash(method), password)


def new_opaque_token() -> str:
    """Return a random URL-safe token with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Digest a high-entropy token for storage (fast: such tokens cannot be guessed)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def sign(value: str, key: str) -> str:
    """Return a short HMAC-SHA256 signature of ``value``."""
    digest = hmac.new(key.encode(), value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def signature_matches(value: str, signature: str, key: str) -> bool:
    """Compare a signature in constant time."""
    return hmac.compare_digest(sign(value, key), signature)
