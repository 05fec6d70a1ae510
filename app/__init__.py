"""Parley: accounts, authentication and conversations over a REST API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

# Heavy imports wait until an app is created: gunicorn's master loads the log formatter of
# app.core.log_format, which must not bring Flask in (see there).
if TYPE_CHECKING:
    from flask import Flask

    from config import Config

OPENAPI_SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "oauth2": {
        "type": "oauth2",
        "flows": {
            "password": {
                "tokenUrl": "/api/v1/auth/token",
                "refreshUrl": "/api/v1/auth/token",
                "scopes": {},
            }
        },
    },
}


def create_app(config_class: type[Config] | None = None, **overrides: Any) -> Flask:
    """Create and configure the Flask application."""
    from flask import Flask

    from config import config_from_env, default_redis_prefix

    config_class = config_class or config_from_env()
    config_class.validate()
    app = Flask(
        __name__,
        static_folder=None,
        instance_path=str(Path(__file__).resolve().parent.parent / "instance"),
    )
    app.config.from_object(config_class)
    app.config.update(overrides)
    if not app.config["REDIS_PREFIX"]:
        app.config["REDIS_PREFIX"] = default_redis_prefix(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["RATELIMIT_KEY_PREFIX"] = app.config["REDIS_PREFIX"]
    app.url_map.converters["id"] = _id_converter()
    app.json = _json_provider(app)

    register_extensions(app)
    register_api(app)
    register_error_handlers(app)
    register_docs_assets(app)
    register_shell_context(app)
    register_commands(app)
    _connect_services()
    return app


def _connect_services() -> None:
    """Hand the real-time tier the auth check it may not import (auth imports events)."""
    from app.services import auth_service, presence_service

    presence_service.check_sessions_with(auth_service.live_sessions)


def _json_provider(app: Flask) -> Any:
    from app.core.http import JSONProvider

    return JSONProvider(app)


def _id_converter() -> type:
    from app.core.utils import IdConverter

    return IdConverter


def register_extensions(app: Flask) -> None:
    """Bind the database, migrations, JWT and the API to the app."""
    import sqlalchemy as sa
    from werkzeug.middleware.proxy_fix import ProxyFix

    from app import models  # noqa: F401 - every table on the metadata, for Alembic
    from app.api.security import init_jwt
    from app.core.headers import init_security_headers
    from app.core.http import init_request_checks
    from app.core.logging import init_request_logging
    from app.core.mail import init_mail
    from app.core.metrics import init_metrics
    from app.database import db
    from app.database.connection import (
        configure_engine,
        engine_options,
        guard_writes,
        init_session_teardown,
        install_commit_hooks,
    )
    from app.extensions import jwt, limiter, migrate

    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////:memory:"):
        Path(sa.make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS",
        engine_options(url, app.config["SQLITE_BUSY_TIMEOUT"], app.config["DB_POOL_SIZE"]),
    )
    db.init_app(app)
    init_session_teardown(app)
    with app.app_context():
        configure_engine(db.engine)
        if app.testing:
            guard_writes(db.engine)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    jwt.init_app(app)
    init_jwt(jwt)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    limiter.init_app(app)
    if app.config["TRUSTED_PROXIES"]:
        # Client IPs from X-Forwarded-For, trusting exactly the configured number of proxies:
        # values a client adds in front of theirs are ignored, so spoofing cannot dodge limits.
        count = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)  # type: ignore[method-assign]
    init_request_logging(app)
    init_mail(app)
    with app.app_context():
        init_metrics(app, db.engine)
    init_request_checks(app)
    init_security_headers(app)
    init_cors(app)
    install_commit_hooks()


def init_cors(app: Flask) -> None:
    """Let the configured browser origins (none by default) call the API.

    Preflights are answered, ``Authorization`` is allowed, and the headers clients need to read
    (``X-Request-ID``, ``Retry-After``, ``Location``) are exposed. Tokens travel in headers, never
    cookies, so credentials mode stays off.
    """
    from flask_cors import CORS

    origins = [o.strip() for o in app.config["CORS_ORIGINS"].split(",") if o.strip()]
    if not origins:
        return
    CORS(
        app,
        resources={r"/api/*": {"origins": origins}},
        allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Last-Event-ID"],
        expose_headers=["X-Request-ID", "Retry-After", "Location"],
        methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        max_age=600,
        supports_credentials=False,
    )


def register_api(app: Flask) -> None:
    """Create the OpenAPI-documented Api and register the domain blueprints on it.

    flask-smorest's Api holds one app's spec, so each app gets its own instance.
    """
    from app.api import health_routes, register_blueprints
    from app.extensions import Api

    api = Api(app, spec_kwargs={"components": {"securitySchemes": OPENAPI_SECURITY_SCHEMES}})
    register_blueprints(api)
    api.register_blueprint(health_routes.blp)


def register_error_handlers(app: Flask) -> None:
    """Install the problem+json handlers (after flask-smorest's, so these win)."""
    from app.core.error_handlers import register_error_handlers as install

    install(app)


def register_docs_assets(app: Flask) -> None:
    """Serve Swagger UI's files from the installed package, so /api/docs works offline."""
    from flask import send_from_directory
    from swagger_ui_bundle import swagger_ui_path

    def swagger_ui_asset(filename: str) -> Any:
        return send_from_directory(str(swagger_ui_path), filename, max_age=86400)

    app.add_url_rule("/api/docs/assets/<path:filename>", "swagger_ui_asset", swagger_ui_asset)


def register_shell_context(app: Flask) -> None:
    """Make ``sa`` and every service module available in ``flask shell`` (models come by default).

    In the shell a session behaves as SQLAlchemy's usual one, on both databases: writes made
    outside a service wait for ``db.session.commit()`` and can be rolled back.
    """
    import importlib
    import pkgutil

    import sqlalchemy as sa

    from app import services

    modules = {
        info.name: importlib.import_module(f"app.services.{info.name}")
        for info in pkgutil.iter_modules(services.__path__)
    }

    @app.shell_context_processor
    def shell_context() -> dict[str, Any]:
        return {"sa": sa, **modules}


def register_commands(app: Flask) -> None:
    """Add Parley's ``flask`` commands."""
    from app.cli import register

    register(app)
