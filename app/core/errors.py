"""Domain errors and their rendering as RFC 9457 problem details."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Response, g, jsonify

PROBLEM_JSON = "application/problem+json"

#: RFC 9110 names where Python's HTTPStatus still has the older ones.
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


class AppError(Exception):
    """An error a client caused or may see; services raise these, never ``abort()``."""

    status_code = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        if code is not None:
            self.code = code
        self.errors = errors
        self.headers = headers or {}

    def to_response(self) -> Response:
        """Render this error as a problem+json response."""
        return problem_response(
            self.status_code, self.code, self.message, errors=self.errors, headers=self.headers
        )


class ValidationFailedError(AppError):
    """422: the request is well-formed but its content is not acceptable."""

    status_code = 422
    code = "validation_error"
    message = "The request body is invalid."


class FieldError(ValidationFailedError):
    """422 about one named field of the request.

    Services name the field; where the client sent it (the body, the query string) is for the
    HTTP layer to say (see :mod:`app.core.error_handlers`).
    """

    def __init__(self, message: str, field: str, problem: str) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem


class UnauthorizedError(AppError):
    """401: no valid credentials."""

    status_code = 401
    code = "not_authenticated"
    message = "Authentication is required."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        # A client that sent a token learns the token itself was the problem (RFC 6750 §3).
        value = "Bearer" if code in (None, "not_authenticated") else 'Bearer error="invalid_token"'
        super().__init__(message, code=code, headers={"WWW-Authenticate": value})


class InvalidCredentialsError(AppError):
    """401: the login and password do not match an active account."""

    status_code = 401
    code = "invalid_credentials"
    message = "The login or password is incorrect."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(AppError):
    """403: authenticated, but not allowed to do this."""

    status_code = 403
    code = "forbidden"
    message = "You are not allowed to do this."


class NotFoundError(AppError):
    """404: no such resource, or one the caller may not know exists."""

    status_code = 404
    code = "not_found"
    message = "The resource was not found."


class ConflictError(AppError):
    """409: the request conflicts with the current state (a duplicate, say)."""

    status_code = 409
    code = "conflict"
    message = "The request conflicts with the current state of the resource."


class ServiceUnavailableError(AppError):
    """503: a backing service (the database) cannot be reached or is busy."""

    status_code = 503
    code = "service_unavailable"
    message = "The service is temporarily unavailable. Try again shortly."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class OAuthError(AppError):
    """An error of the OAuth2 token endpoint, rendered as RFC 6749 §5.2 prescribes."""

    status_code = 400

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description, code=error)

    def to_response(self) -> Response:
        """Render ``{"error", "error_description"}`` with no-store caching."""
        response = jsonify({"error": self.code, "error_description": self.message})
        response.status_code = self.status_code
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """Build an ``application/problem+json`` response in Parley's error envelope."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status) or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None and status == 422:
        body["errors"] = errors
    body.update(extra or {})
    body["request_id"] = g.get("request_id")
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
