"""``/api/v1/users``: the caller's account, profiles and search."""

from __future__ import annotations

from typing import Any

from app.api.rate_limits import per_signed_in_password_account
from app.api.security import auth_required, current_user_id
from app.extensions import Blueprint
from app.schemas.user_schema import (
    UserDeleteSchema,
    UserPageSchema,
    UserPrivateSchema,
    UserSchema,
    UserSearchQuerySchema,
    UserUpdateSchema,
)
from app.services import auth_service, presence_service, user_service

blp = Blueprint("users", __name__, url_prefix="/users", description="User accounts and profiles.")


@blp.route("/me", methods=["GET"])
@auth_required
@blp.response(200, UserPrivateSchema)
def get_me() -> Any:
    """Return the caller's own account."""
    return user_service.get_own_account(current_user_id())


@blp.route("/me", methods=["PATCH"])
@auth_required
@blp.arguments(UserUpdateSchema())
@blp.response(200, UserPrivateSchema)
@blp.alt_response(409, description="Username taken.")
def update_me(data: dict[str, Any]) -> Any:
    """Change the caller's display name, username or `show_presence`."""
    return presence_service.update_profile(current_user_id(), **data)


@blp.route("/me", methods=["DELETE"])
@auth_required
@per_signed_in_password_account()
@blp.arguments(UserDeleteSchema())
@blp.response(204)
def delete_me(data: dict[str, Any]) -> None:
    """Deactivate the caller's account (all sessions are revoked)."""
    auth_service.close_own_account(current_user_id(), data["password"])


@blp.route("/<id:user_id>", methods=["GET"])
@auth_required
@blp.response(200, UserSchema)
def get_user(user_id: int) -> Any:
    """Return a user's public profile."""
    return user_service.get_active_user(user_id)


@blp.route("", methods=["GET"])
@auth_required
@blp.arguments(UserSearchQuerySchema(), location="query")
@blp.response(200, UserPageSchema)
def search_users(query: dict[str, Any]) -> Any:
    """Find users by username or display-name prefix."""
    items, next_cursor = user_service.search_users(query["q"], query["limit"], query["cursor"])
    return {"items": items, "next_cursor": next_cursor}
