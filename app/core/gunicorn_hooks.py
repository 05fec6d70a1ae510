"""What Parley changes in gunicorn, for gunicorn.conf.py: each use of a gunicorn internal is here.

gunicorn answers some requests itself, before the app sees them: a request line or headers over
its limits, bytes that are not HTTP. Its answer is an HTML page; Parley's every answer is
problem+json, so :func:`install_problem_errors` replaces the function that writes that page
(``gunicorn.util.write_error``, which ``Worker.handle_error`` calls). And a response can only be
told to close its connection from gunicorn's side: :func:`close_after_oversized_body` marks a
request whose declared body is too large to drain, so that its 413 says ``Connection: close``.
``tests/core/test_gunicorn_hooks.py`` fails if the pinned gunicorn changes either thing relied on.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from gunicorn import util

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
