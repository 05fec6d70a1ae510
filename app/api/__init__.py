"""HTTP layer: one blueprint per domain, all under ``/api/v1``."""

from __future__ import annotations

from flask_smorest import Api

API_PREFIX = "/api/v1"


def register_blueprints(api: Api) -> None:
    """Register every domain blueprint on the flask-smorest Api."""
    from app.api import (
        admin_routes,
        auth_routes,
        conversation_routes,
        event_routes,
        message_routes,
        user_routes,
    )

    modules = (auth_routes, user_routes, admin_routes, conversation_routes, message_routes)
    for module in (*modules, event_routes):
        api.register_blueprint(module.blp, url_prefix=f"{API_PREFIX}{module.blp.url_prefix}")
