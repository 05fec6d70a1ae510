"""Security headers on every reply.

No MIME sniffing, no caching of private data, and a Content-Security-Policy: strict for JSON,
limited to this origin for the docs page.
"""

from __future__ import annotations

from flask import Flask, Response, request

#: The docs page loads Swagger UI from this app only; its small configuration script is inline.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
#: Everything else is JSON: nothing in it may run or be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def add_security_headers(response: Response) -> Response:
    """Set the headers on one response (existing values are kept)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/api/docs"):
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP)
    else:
        response.headers.setdefault("Content-Security-Policy", API_CSP)
    if "Authorization" in request.headers:
        # A reply to an authenticated request is someone's private data.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_security_headers(app: Flask) -> None:
    """Register the header hook."""
    app.after_request(add_security_headers)
