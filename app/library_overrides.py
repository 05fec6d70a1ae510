"""Every place Parley relies on a library's internals, each with its reason.

Parley uses its libraries through their public APIs everywhere else. Where it needs something
those do not offer, the override lives here, and ``tests/test_library_overrides.py`` fails if the
pinned version of the library changes the internal it relies on:

- :class:`ProblemJsonApi`: flask-smorest documents every error response under
  ``application/json``; Parley's errors are ``application/problem+json`` (RFC 9457). It offers no
  setting for the error responses' content type, only ``Api._register_responses``.
- :class:`CachingJWTManager`: flask-jwt-extended verifies a token (three parses and an HMAC) and
  parses its header again on every request; a client sends the same token for 15 minutes. It
  offers no hook around either, only ``JWTManager._decode_jwt_from_config`` and the module
  function ``flask_jwt_extended.view_decorators.get_unverified_jwt_headers``.
- :func:`install_problem_errors` and :func:`close_after_oversized_body`: what gunicorn answers
  itself is an HTML page (``gunicorn.util.write_error``), and a response can only be told to
  close its connection from gunicorn's side (a request's ``must_close``).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

import flask_jwt_extended
import flask_smorest
from flask import current_app
from flask_jwt_extended import view_decorators
from gunicorn import util

from app.core.errors import PROBLEM_JSON
from app.schemas.problem_schema import ProblemSchema


class ProblemJsonApi(flask_smorest.Api):
    """flask-smorest's Api, documenting every error response as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        # The shared error responses are problem+json; successful ones stay application/json.
        self.DEFAULT_RESPONSE_CONTENT_TYPE = PROBLEM_JSON
        try:
            super()._register_responses()
        finally:
            del self.DEFAULT_RESPONSE_CONTENT_TYPE


class CachingJWTManager(flask_jwt_extended.JWTManager):
    """flask-jwt-extended's manager, remembering the access tokens it has verified.

    Verifying a token costs more than the rest of a small read. A token string that verified once
    always decodes to the same claims under the same key, so each worker keeps the claims of
    recent tokens (a bounded LRU keyed by key and token) and checks only the expiry again.
    Everything else of verification stays the library's (``verify_jwt_in_request``: the header,
    the token type, the blocklist callback that checks the session on every request).
    """

    #: Verified tokens kept per worker; about 1 KiB each.
    CACHE_SIZE = 4096

    def __init__(self) -> None:
        super().__init__()
        self._verified: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def init_app(self, app: Any, add_context_processor: bool = False) -> None:
        """Bind to the app, and read verified tokens' headers from the cache too."""
        super().init_app(app, add_context_processor)
        view_decorators.get_unverified_jwt_headers = _cached_headers  # type: ignore[attr-defined]

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value: Any = None, allow_expired: bool = False
    ) -> dict[str, Any]:
        if csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        key = (str(current_app.config["JWT_SECRET_KEY"]), encoded_token)
        with self._lock:
            claims = self._verified.get(key)
            if claims is not None:
                self._verified.move_to_end(key)
        if claims is not None and _unexpired(claims, current_app.config["JWT_DECODE_LEEWAY"]):
            return dict(claims)
        # Not seen, or expired: the full check, which raises the error a client should see.
        claims = super()._decode_jwt_from_config(encoded_token)
        with self._lock:
            self._verified[key] = claims
            while len(self._verified) > self.CACHE_SIZE:
                self._verified.popitem(last=False)
        return dict(claims)


#: Headers of recent tokens: a token string always has the same header.
_headers: OrderedDict[str, dict[str, Any]] = OrderedDict()
_headers_lock = threading.Lock()
_read_headers = flask_jwt_extended.get_unverified_jwt_headers


def _cached_headers(encoded_token: str) -> dict[str, Any]:
    """``get_unverified_jwt_headers``, remembered per token (it is called after verification)."""
    with _headers_lock:
        header = _headers.get(encoded_token)
        if header is not None:
            _headers.move_to_end(encoded_token)
            return dict(header)
    header = _read_headers(encoded_token)
    with _headers_lock:
        _headers[encoded_token] = dict(header)
        while len(_headers) > CachingJWTManager.CACHE_SIZE:
            _headers.popitem(last=False)
    return header


def _unexpired(claims: dict[str, Any], leeway: Any) -> bool:
    """PyJWT's expiry rule: valid while ``exp > now - leeway`` (no ``exp``: never expires)."""
    exp = claims.get("exp")
    if exp is None:
        return True
    seconds = leeway.total_seconds() if hasattr(leeway, "total_seconds") else float(leeway)
    return bool(exp > time.time() - seconds)


#: Stable ``code`` and ``detail`` of each status gunicorn answers by itself.
GUNICORN_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request is not valid HTTP."),
    403: ("forbidden", "The request was refused."),
    414: ("uri_too_long", "The request line is too long."),
    417: ("expectation_failed", "The expectation in the Expect header cannot be met."),
    431: ("request_header_fields_too_large", "The request headers are too large."),
    500: ("internal_error", "Something went wrong on our side."),
    501: ("not_implemented", "The request uses a transfer coding this server does not support."),
}


def problem_bytes(status: int, reason: str) -> bytes:
    """Return a whole HTTP/1.1 response: a problem+json body, and the connection closing."""
    code, detail = GUNICORN_PROBLEMS.get(status, ("error", "The request failed."))
    request_id = secrets.token_hex(16)
    body = json.dumps(
        {
            "type": "about:blank",
            "title": reason,
            "status": status,
            "detail": detail,
            "code": code,
            "request_id": request_id,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Stand in for ``gunicorn.util.write_error``: the same answer, as problem+json.

    ``mesg`` (gunicorn's description, which may quote the client's bytes) is logged by gunicorn
    and not echoed back.
    """
    util.write_nonblock(sock, problem_bytes(int(status_int), str(reason)))


def install_problem_errors() -> None:
    """Make gunicorn's own error answers problem+json (call once, in the master)."""
    util.write_error = write_problem


def close_after_oversized_body(req: Any, drain_limit: int) -> None:
    """Close the connection after a request whose declared body is over ``drain_limit``.

    The app answers such a request 413 after reading at most ``drain_limit`` bytes of it (see
    :func:`app.core.http.drain_body`); the rest cannot be skipped cheaply, so the response must
    say ``Connection: close`` instead of promising a connection the next request cannot use.
    """
    for name, value in req.headers:
        if name == "CONTENT-LENGTH" and value.isdigit() and int(value) > drain_limit:
            req.must_close = True
