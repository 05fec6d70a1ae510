"""Opaque keyset cursors: a signed, URL-safe encoding of the last row's sort key."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from flask import current_app

from app.core.errors import FieldError
from app.core.security import sign, signature_matches

#: Page sizes: ``limit`` when a client gives none, and the largest it may ask for.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _secret() -> str:
    """Cursors are signed with the app's ``SECRET_KEY``."""
    return str(current_app.config["SECRET_KEY"])


def encode_cursor(key: list[Any]) -> str:
    """Encode a sort key as an opaque cursor that the client cannot forge."""
    secret = _secret()
    payload = base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode())
    text = payload.decode().rstrip("=")
    return f"{text}.{sign(text, secret)}"


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """Decode a cursor made by :func:`encode_cursor`; anything else is a 422."""
    invalid = FieldError("The cursor is malformed.", "cursor", "Invalid cursor.")
    text, _, signature = cursor.partition(".")
    if not text or not signature or not signature_matches(text, signature, _secret()):
        raise invalid
    try:
        key = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):  # pragma: no cover - signed, so always well-formed
        raise invalid from None
    if not isinstance(key, list) or len(key) != arity:  # pragma: no cover - signed by us
        raise invalid
    return key


def page_of(rows: list[Any], limit: int, key_of: Any) -> tuple[list[Any], str | None]:
    """Split ``limit + 1`` fetched rows into a page and the cursor of the next one."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(key_of(page[-1]))
