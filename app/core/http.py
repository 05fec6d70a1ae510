"""Checks every request body passes before a view sees it: media type and well-formed JSON."""

from __future__ import annotations

import json

from flask import Flask, request

from app.core.errors import AppError

#: Endpoints that take an HTML-form body instead of JSON (the OAuth2 token endpoint).
FORM_ENDPOINTS: set[str] = set()

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class UnsupportedMediaTypeError(AppError):
    """415: the body is not in a media type this endpoint reads."""

    status_code = 415
    code = "unsupported_media_type"
    message = "The request body must be JSON (Content-Type: application/json)."


class InvalidJsonError(AppError):
    """400: the body claims to be JSON but is not."""

    status_code = 400
    code = "invalid_json"
    message = "The request body is not valid JSON."


def _has_body() -> bool:
    return (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def is_json_media_type(mimetype: str) -> bool:
    """Accept ``application/json`` and structured ``+json`` types."""
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def check_request_body() -> None:
    """Reject a body in the wrong media type (415) or JSON that does not parse (400).

    JSON is parsed here once, with the depth and encoding errors the standard parser raises
    (RecursionError, UnicodeDecodeError) caught, and cached for webargs to reuse.
    """
    if request.method in ("GET", "HEAD", "OPTIONS") or not _has_body():
        return
    if request.endpoint in FORM_ENDPOINTS:
        if request.mimetype != FORM_MEDIA_TYPE:
            raise UnsupportedMediaTypeError(
                f"This endpoint reads a form body (Content-Type: {FORM_MEDIA_TYPE})."
            )
        return
    if not is_json_media_type(request.mimetype):
        raise UnsupportedMediaTypeError()
    try:
        parsed = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):
        raise InvalidJsonError() from None
    request._cached_json = (parsed, parsed)  # Flask's own cache: get_json() reuses it


def init_request_checks(app: Flask) -> None:
    """Register the body checks to run before every view."""
    app.before_request(check_request_body)
