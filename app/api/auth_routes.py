"""``/api/v1/auth``: register, login, OAuth2 token, refresh, logout, sessions, password."""

from __future__ import annotations

from typing import Any

from flask import Response, request, url_for
from marshmallow import ValidationError

from app.api.rate_limits import (
    per_ip,
    per_ip_and_account,
    per_ip_and_password_account,
    per_signed_in_password_account,
)
from app.api.security import auth_required, current_session_id, current_user_id
from app.core.errors import OAuthError
from app.core.http import FORM_MEDIA_TYPE, form_body
from app.extensions import Blueprint
from app.schemas.auth_schema import (
    AcceptedSchema,
    LoginSchema,
    PasswordChangeSchema,
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    RefreshSchema,
    RegisterSchema,
    SessionListSchema,
    TokenPairSchema,
    TokenRequestSchema,
)
from app.schemas.user_schema import UserPrivateSchema
from app.services import auth_service, user_service

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Accounts and token sessions.")


def _user_agent() -> str | None:
    return request.headers.get("User-Agent")


def _no_store(body: Any) -> tuple[Any, int, dict[str, str]]:
    return body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}


@blp.route("/register", methods=["POST"])
@per_ip_and_account("email")
@blp.arguments(RegisterSchema())
@blp.response(201, UserPrivateSchema)
@blp.alt_response(409, description="Email or username already taken.")
def register(data: dict[str, Any]) -> Any:
    """Create an account."""
    user = user_service.create_user(**data)
    return user, 201, {"Location": url_for("users.get_user", user_id=user.id)}


@blp.route("/login", methods=["POST"])
@per_ip_and_password_account("login")
@blp.arguments(LoginSchema())
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, description="Wrong login or password, or a deactivated account.")
def login(data: dict[str, Any]) -> Any:
    """Log in with an email or username and a password."""
    return _no_store(auth_service.login(data["login"], data["password"], _user_agent()))


@blp.route("/token", methods=["POST"])
@form_body
@per_ip_and_password_account("username")
@blp.doc(
    requestBody={
        "required": True,
        "content": {FORM_MEDIA_TYPE: {"schema": TokenRequestSchema}},
    },
    responses={"400": {"description": "RFC 6749 §5.2 error: `{error, error_description}`."}},
)
@blp.response(200, TokenPairSchema)
def token() -> Any:
    """OAuth2 token endpoint: password and refresh_token grants (RFC 6749 §4.3, §6)."""
    repeated = sorted(name for name, values in request.form.lists() if len(values) > 1)
    if repeated:  # RFC 6749 §3.2: parameters must not be included more than once
        raise OAuthError("invalid_request", f"Parameter given more than once: {repeated[0]}.")
    try:
        form = TokenRequestSchema().load(request.form.to_dict())
    except ValidationError as error:
        field = next(iter(error.messages_dict), "request")
        if field == "grant_type" and request.form.get("grant_type"):
            raise OAuthError("unsupported_grant_type", "Use password or refresh_token.") from None
        raise OAuthError("invalid_request", f"Invalid or missing parameter: {field}.") from None
    if form["grant_type"] == "password":
        if not form.get("username") or not form.get("password"):
            raise OAuthError("invalid_request", "username and password are required.")
        pair = auth_service.password_grant(form["username"], form["password"], _user_agent())
    else:
        if not form.get("refresh_token"):
            raise OAuthError("invalid_request", "refresh_token is required.")
        pair = auth_service.refresh_grant(form["refresh_token"], _user_agent())
    return _no_store(pair)


@blp.route("/refresh", methods=["POST"])
@per_ip()
@blp.arguments(RefreshSchema())
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, description="Invalid, expired or reused refresh token.")
def refresh(data: dict[str, Any]) -> Any:
    """Exchange a refresh token for a new pair (the one sent is spent)."""
    return _no_store(auth_service.refresh(data["refresh_token"], _user_agent()))


@blp.route("/logout", methods=["POST"])
@auth_required
@blp.response(204)
def logout() -> Response | None:
    """Revoke the current session."""
    auth_service.logout(current_user_id(), current_session_id())
    return None


@blp.route("/sessions", methods=["GET"])
@auth_required
@blp.response(200, SessionListSchema)
def list_sessions() -> Any:
    """List the caller's active sessions."""
    return {"items": auth_service.list_sessions(current_user_id(), current_session_id())}


@blp.route("/sessions/<id:session_id>", methods=["DELETE"])
@auth_required
@blp.response(204)
def revoke_session(session_id: int) -> None:
    """Revoke one of the caller's sessions."""
    auth_service.revoke_session(current_user_id(), session_id)


@blp.route("/password", methods=["POST"])
@auth_required
@per_signed_in_password_account()
@blp.arguments(PasswordChangeSchema())
@blp.response(204)
def change_password(data: dict[str, Any]) -> None:
    """Change the password; every other session is revoked."""
    auth_service.change_password(
        current_user_id(), current_session_id(), data["current_password"], data["new_password"]
    )


@blp.route("/password-reset", methods=["POST"])
@per_ip_and_account("email")
@blp.arguments(PasswordResetRequestSchema())
@blp.response(202, AcceptedSchema)
def request_password_reset(data: dict[str, Any]) -> Any:
    """Mail a password-reset token (the same answer whether or not the email is known)."""
    auth_service.request_password_reset(data["email"])
    return {"status": "accepted"}


@blp.route("/password-reset/confirm", methods=["POST"])
@per_ip()
@blp.arguments(PasswordResetConfirmSchema())
@blp.response(204)
@blp.alt_response(400, description="Bad, used or expired token (`invalid_token`).")
def confirm_password_reset(data: dict[str, Any]) -> None:
    """Set a new password with a reset token; every session is revoked."""
    auth_service.confirm_password_reset(data["token"], data["new_password"])
