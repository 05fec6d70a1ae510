"""``/api/v1/admin``: account administration (admins only)."""

from __future__ import annotations

from typing import Any

from app.api.security import auth_required, current_user_id
from app.extensions import Blueprint
from app.schemas.fields import PageQuerySchema
from app.schemas.user_schema import AdminUserUpdateSchema, UserPrivatePageSchema, UserPrivateSchema
from app.services import auth_service, user_service

blp = Blueprint("admin", __name__, url_prefix="/admin", description="Administration.")


@blp.route("/users", methods=["GET"])
@auth_required
@blp.arguments(PageQuerySchema(), location="query")
@blp.response(200, UserPrivatePageSchema)
def list_users(query: dict[str, Any]) -> Any:
    """List every account, active or not."""
    items, next_cursor = user_service.admin_list_users(
        current_user_id(), query["limit"], query["cursor"]
    )
    return {"items": items, "next_cursor": next_cursor}


@blp.route("/users/<id:user_id>", methods=["PATCH"])
@auth_required
@blp.arguments(AdminUserUpdateSchema())
@blp.response(200, UserPrivateSchema)
def update_user(data: dict[str, Any], user_id: int) -> Any:
    """Activate, deactivate, promote or demote an account."""
    return auth_service.update_account_as_admin(current_user_id(), user_id, **data)
