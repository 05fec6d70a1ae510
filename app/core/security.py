"""Password hashing and opaque-token helpers."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from werkzeug.security import check_password_hash, generate_password_hash


def hash_password(password: str, method: str) -> str:
    """Hash a password with werkzeug using ``method`` (e.g. ``scrypt:65536:8:2``)."""
    return generate_password_hash(password, method=method)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password; an unknown, corrupt or missing stored hash is simply a mismatch."""
    if not stored_hash:
        return False
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
