"""Parley configuration: one class per environment, every value read from the environment."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent

# A developer's .env fills in whatever the real environment leaves unset; production and the
# test suite read the environment alone.
if os.environ.get("PARLEY_ENV", "development").strip().lower() == "development":
    load_dotenv(BASE_DIR / ".env")

#: Werkzeug method string for new password hashes. scrypt with N=2**16, r=8, p=2 is one of the
#: parameter sets of the OWASP Password Storage Cheat Sheet (64 MiB, werkzeug's default is weaker).
OWASP_SCRYPT = "scrypt:65536:8:2"

#: Secrets shorter than this are refused in production (HS256 wants at least 256 bits).
MIN_SECRET_BYTES = 32


def as_bool(value: str | None, default: bool = False) -> bool:
    """Read a boolean environment value such as ``true``, ``1``, ``no`` or ``off``."""
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def as_int(value: str | None, default: int) -> int:
    """Read an integer environment value, falling back to ``default`` when unset."""
    if value is None or value.strip() == "":
        return default
    return int(value)


def normalize_database_url(url: str) -> str:
    """Make every PostgreSQL URL use psycopg 3, whatever spelling the operator used."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def default_redis_prefix(database_url: str) -> str:
    """Name a deployment's Redis keys after its database: ``parley:<host>:<port>/<database>``."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    return f"parley:{url.host or ''}:{url.port or ''}/{url.database or ''}"


def default_sqlite_url() -> str:
    """Return the embedded default database, ``instance/parley.db`` beside the code."""
    return f"sqlite:///{BASE_DIR / 'instance' / 'parley.db'}"


class Config:
    """Settings shared by every environment."""

    ENV_NAME = "base"
    TESTING = False
    DEBUG = False

    # Secrets
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    JWT_SECRET_KEY = os.environ.get("JWT_SECRET_KEY", "")

    # Database
    SQLALCHEMY_DATABASE_URI = normalize_database_url(
        os.environ.get("DATABASE_URL") or default_sqlite_url()
    )
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    #: Seconds a SQLite writer waits for the write lock before the request gets 503.
    SQLITE_BUSY_TIMEOUT = as_int(os.environ.get("SQLITE_BUSY_TIMEOUT"), 5)
    #: PostgreSQL connections each process keeps open once opened (10 more open for bursts, then
    #: close). One per thread of the default gunicorn worker, so a busy worker never reconnects;
    #: waiting long-polls and streams hold no connection, so more threads need no more of them.
    DB_POOL_SIZE = as_int(os.environ.get("DB_POOL_SIZE"), 16)

    # Optional services
    REDIS_URL = os.environ.get("REDIS_URL", "")
    #: Namespace of this deployment's keys and channels in Redis: deployments sharing one Redis
    #: never wake each other's readers (pub/sub ignores database numbers). Default: derived from
    #: the database's name (see default_redis_prefix).
    REDIS_PREFIX = os.environ.get("REDIS_PREFIX", "")

    # Events
    #: Days events are kept; older cursors get 410 cursor_expired.
    EVENTS_RETENTION_DAYS = as_int(os.environ.get("EVENTS_RETENTION_DAYS"), 7)
    #: How often a waiting reader checks the database when no wake-up arrives (no Redis).
    EVENTS_POLL_SECONDS = float(os.environ.get("EVENTS_POLL_SECONDS") or 1.0)
    #: Event connections (streams and waiting long-polls) one user may hold at once.
    EVENTS_MAX_CONNECTIONS_PER_USER = as_int(os.environ.get("EVENTS_MAX_CONNECTIONS_PER_USER"), 10)
    #: Seconds between keep-alive comments on an idle event stream.
    EVENTS_KEEPALIVE_SECONDS = float(os.environ.get("EVENTS_KEEPALIVE_SECONDS") or 15.0)
    #: Seconds a write to an event stream may block before the stream is closed (the backstop
    #: for a client that stops reading; normally it is closed at 256 KB unsent, without blocking).
    EVENTS_SEND_TIMEOUT_SECONDS = float(os.environ.get("EVENTS_SEND_TIMEOUT_SECONDS") or 10.0)
    #: A user is ``online`` this many seconds after their last event connection closed.
    PRESENCE_TIMEOUT_SECONDS = float(os.environ.get("PRESENCE_TIMEOUT_SECONDS") or 60.0)
    #: Presence events reach the members of conversations of up to this many members.
    PRESENCE_EVENTS_MAX_MEMBERS = as_int(os.environ.get("PRESENCE_EVENTS_MAX_MEMBERS"), 100)

    # Tokens
    JWT_ALGORITHM = "HS256"
    JWT_DECODE_ALGORITHMS = ["HS256"]
    JWT_TOKEN_LOCATION = ["headers"]
    JWT_CSRF_PROTECT = False  # tokens travel in the Authorization header, never in cookies
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=as_int(os.environ.get("ACCESS_TOKEN_MINUTES"), 15))
    REFRESH_TOKEN_EXPIRES = timedelta(days=as_int(os.environ.get("REFRESH_TOKEN_DAYS"), 30))
    PASSWORD_RESET_EXPIRES = timedelta(hours=1)

    # Passwords
    PASSWORD_HASH_METHOD = os.environ.get("PASSWORD_HASH_METHOD", OWASP_SCRYPT)

    # HTTP
    MAX_CONTENT_LENGTH = 64 * 1024
    RATELIMIT_ENABLED = as_bool(os.environ.get("RATELIMIT_ENABLED"), True)
    #: Login, token, register and password reset: per client IP and, separately, per account.
    RATELIMIT_AUTH = os.environ.get("RATELIMIT_AUTH") or "10 per minute"
    #: Sending messages, per user.
    RATELIMIT_MESSAGES = os.environ.get("RATELIMIT_MESSAGES") or "30 per 10 seconds"
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_STRATEGY = "moving-window"
    RATELIMIT_KEY_PREFIX = "parley"
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}
    TRUSTED_PROXIES = as_int(os.environ.get("TRUSTED_PROXIES"), 0)
    CORS_ORIGINS = os.environ.get("CORS_ORIGINS", "")
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()

    # Metrics
    #: Serve Prometheus metrics at /metrics.
    METRICS_ENABLED = as_bool(os.environ.get("METRICS_ENABLED"), True)
    #: When set, a scrape must send ``Authorization: Bearer <METRICS_TOKEN>``.
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

    # Mail (password reset)
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
    MAIL_PORT = as_int(os.environ.get("MAIL_PORT"), 25)
    MAIL_USE_TLS = as_bool(os.environ.get("MAIL_USE_TLS"), False)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME", "")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD", "")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "parley@localhost")
    #: Flask-Mailman's backend; empty: chosen from the settings (see app/core/mail.py).
    MAIL_BACKEND = os.environ.get("MAIL_BACKEND", "")
    #: Without MAIL_SERVER, write whole mails (reset tokens included) to the log. Never in
    #: production, where only the fact that a mail was not sent is logged.
    MAIL_LOG_BODY = True

    # OpenAPI: the spec at /api/v1/openapi.json, Swagger UI at /api/docs, assets served locally.
    API_TITLE = "Parley"
    API_VERSION = "v1"
    # 3.0.x: the Swagger UI served with the app (4.15, from swagger-ui-bundle) renders 3.0 only.
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "v1/openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/api/docs/assets/"
    OPENAPI_SWAGGER_UI_CONFIG = {
        "oauth2RedirectUrl": "/api/docs/assets/oauth2-redirect.html",
        "persistAuthorization": True,
    }

    @classmethod
    def validate(cls) -> None:
        """Refuse settings that are unsafe for this environment (no-op outside production)."""


class DevelopmentConfig(Config):
    """Local development: debug on, throwaway secrets allowed."""

    ENV_NAME = "development"
    DEBUG = True
    SECRET_KEY = Config.SECRET_KEY or "dev-secret-key-not-for-production-0000"
    JWT_SECRET_KEY = Config.JWT_SECRET_KEY or "dev-jwt-secret-key-not-for-production-00"


class TestingConfig(Config):
    """The test suite: its own database, cheap password hashing, no rate limits."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-0123456789abcdef0123"
    JWT_SECRET_KEY = "testing-jwt-secret-key-0123456789abcdef"
    SQLALCHEMY_DATABASE_URI = normalize_database_url(
        os.environ.get("TEST_DATABASE_URL") or "sqlite://"
    )
    # Hashing at OWASP strength would make every register and login in the suite slow.
    PASSWORD_HASH_METHOD = "scrypt:1024:8:1"
    RATELIMIT_ENABLED = as_bool(os.environ.get("RATELIMIT_ENABLED"), False)


class ProductionConfig(Config):
    """Production: real secrets required."""

    ENV_NAME = "production"
    MAIL_LOG_BODY = False

    @classmethod
    def validate(cls) -> None:
        """Refuse to start without real secrets of at least 32 bytes."""
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            value = getattr(cls, name)
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise RuntimeError(
                    f"{name} must be set to a random value of at least "
                    f"{MIN_SECRET_BYTES} bytes in production"
                )


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_env() -> type[Config]:
    """Pick the configuration class named by ``PARLEY_ENV`` (default: development)."""
    name = os.environ.get("PARLEY_ENV", "development").strip().lower()
    try:
        return CONFIGS[name]
    except KeyError:
        raise RuntimeError(
            f"PARLEY_ENV must be one of {', '.join(CONFIGS)}, not {name!r}"
        ) from None
