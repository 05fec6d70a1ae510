"""Turn every error the app can raise into problem details (see ``app.core.errors``)."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy.exc as sa_exc
from flask import Flask, Response, g, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from app.core.errors import AppError, FieldError, ServiceUnavailableError, problem_response
from app.core.http import drain_body
from app.database import db

log = logging.getLogger("parley.errors")

#: Stable ``code`` for each HTTP status that Werkzeug or flask-smorest may raise.
HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}

HTTP_DETAILS = {
    400: "The request could not be understood.",
    404: "The resource was not found.",
    405: "The method is not allowed for this resource.",
    413: "The request body is larger than the 64 KiB limit.",
    415: "The request body must be JSON (Content-Type: application/json).",
    422: "The request is invalid.",
    500: "Something went wrong on our side.",
}


def handle_http_exception(error: HTTPException) -> Response:
    """Render Werkzeug and flask-smorest HTTP errors (and webargs validation) as problems."""
    status = error.code or 500
    data: dict[str, Any] = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    code = HTTP_CODES.get(status, "error")
    detail = HTTP_DETAILS.get(status) or error.description or "The request failed."
    if status == 422:
        detail = "The request is invalid."
    headers = dict(data.get("headers") or {})
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    if status == 500:
        return handle_unexpected(error)
    if status == 413:
        drain_body()  # keep the connection usable for the client's next request
    return problem_response(status, code, detail, errors=errors, headers=headers)


def handle_app_error(error: AppError) -> Response:
    """Render a domain error raised by a service."""
    if isinstance(error, FieldError):
        return problem_response(
            error.status_code,
            error.code,
            error.message,
            errors={field_location(error.field): {error.field: [error.problem]}},
        )
    return error.to_response()


def field_location(field: str) -> str:
    """Where the request carried ``field``: ``path``, ``query``, ``headers`` or ``json``."""
    if request.view_args and field in request.view_args:
        return "path"
    if field in request.args:
        return "query"
    if field in request.headers:
        return "headers"
    return "json"


def handle_validation_error(error: ValidationError) -> Response:
    """Render a marshmallow error that escaped webargs (a schema loaded by hand)."""
    messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return problem_response(
        422, "validation_error", "The request is invalid.", errors={"json": messages}
    )


def handle_integrity_error(error: sa_exc.IntegrityError) -> Response:
    """Answer a violated database constraint with 409, never a 500."""
    db.session.rollback()
    log.info("integrity conflict: %s", error.orig)
    return problem_response(409, "conflict", "The request conflicts with existing data.")


def handle_database_unavailable(error: sa_exc.SQLAlchemyError) -> Response:
    """Answer 503 when the database is down, unreachable or (SQLite) locked too long."""
    db.session.rollback()
    log.warning("database unavailable: %s", error)
    return ServiceUnavailableError().to_response()


def handle_unexpected(error: BaseException) -> Response:
    """Log the traceback with the request id; the client learns only the request id."""
    try:
        db.session.rollback()
    except Exception:  # the session may be unusable; the 500 must still go out
        log.exception("rollback failed after an unexpected error")
    log.error("unhandled error (request_id=%s)", g.get("request_id"), exc_info=error)
    return problem_response(500, "internal_error", HTTP_DETAILS[500])


def register_error_handlers(app: Flask) -> None:
    """Install the app-wide handlers (after flask-smorest, so these win)."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(sa_exc.IntegrityError, handle_integrity_error)
    app.register_error_handler(sa_exc.OperationalError, handle_database_unavailable)
    app.register_error_handler(sa_exc.InterfaceError, handle_database_unavailable)
    app.register_error_handler(sa_exc.TimeoutError, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
