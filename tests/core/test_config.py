"""Configuration classes, read from the environment."""

from __future__ import annotations

import importlib

import pytest

import config
from app import create_app
from config import (
    OWASP_SCRYPT,
    DevelopmentConfig,
    ProductionConfig,
    as_bool,
    as_int,
    config_from_env,
    normalize_database_url,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_are_normalised(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def test_helpers() -> None:
    assert as_bool("TRUE") and as_bool("1") and as_bool(" on ")
    assert not as_bool("false") and not as_bool("0")
    assert as_bool(None, True) and as_bool("", True)
    assert as_int(None, 3) == 3 and as_int("7", 3) == 7


def test_env_picks_the_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_ENV", "production")
    assert config_from_env() is ProductionConfig
    monkeypatch.setenv("PARLEY_ENV", "Development")
    assert config_from_env() is DevelopmentConfig
    monkeypatch.setenv("PARLEY_ENV", "staging")
    with pytest.raises(RuntimeError, match="PARLEY_ENV"):
        config_from_env()


@pytest.mark.parametrize(
    ("secret", "jwt_secret"),
    [("", ""), ("short", "x" * 40), ("x" * 40, "y" * 31)],
)
def test_production_refuses_weak_secrets(secret: str, jwt_secret: str) -> None:
    weak = type("Weak", (ProductionConfig,), {"SECRET_KEY": secret, "JWT_SECRET_KEY": jwt_secret})
    with pytest.raises(RuntimeError, match="at least 32 bytes"):
        create_app(weak)


def test_production_starts_with_real_secrets() -> None:
    strong = type(
        "Strong",
        (ProductionConfig,),
        {
            "SECRET_KEY": "s" * 32,
            "JWT_SECRET_KEY": "j" * 32,
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
        },
    )
    app = create_app(strong)
    assert not app.testing and not app.debug


def test_default_app_is_not_testing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_ENV", "development")
    app = create_app(SQLALCHEMY_DATABASE_URI="sqlite://")
    assert not app.testing
    assert app.config["ENV_NAME"] == "development"


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "ACCESS_TOKEN_MINUTES",
        "REFRESH_TOKEN_DAYS",
        "PASSWORD_HASH_METHOD",
    ):
        monkeypatch.delenv(name, raising=False)
    fresh = importlib.reload(config)
    try:
        assert fresh.Config.SQLALCHEMY_DATABASE_URI.endswith("instance/parley.db")
        assert fresh.Config.JWT_ACCESS_TOKEN_EXPIRES.total_seconds() == 15 * 60
        assert fresh.Config.REFRESH_TOKEN_EXPIRES.days == 30
        assert fresh.Config.MAX_CONTENT_LENGTH == 64 * 1024
        assert fresh.Config.PASSWORD_HASH_METHOD == OWASP_SCRYPT
    finally:
        importlib.reload(config)


def test_owasp_scrypt_parameters() -> None:
    # OWASP Password Storage Cheat Sheet: scrypt N=2^16 (64 MiB), r=8, p=2 is one of its sets.
    _, n, r, p = OWASP_SCRYPT.split(":")
    assert int(n) * int(r) * 128 >= 64 * 1024 * 1024 and int(p) >= 2


def test_the_redis_prefix_is_derived_from_the_database_unless_set(
    database_url: str, _schema: None
) -> None:
    from app import create_app
    from config import TestingConfig, default_redis_prefix

    first = default_redis_prefix("postgresql+psycopg://u:secret@db.example:5432/parley")
    assert first == "parley:db.example:5432/parley" and "secret" not in first
    assert default_redis_prefix("postgresql+psycopg://u@db.example:5432/other") != first
    assert default_redis_prefix("sqlite:////srv/a/parley.db") != default_redis_prefix(
        "sqlite:////srv/b/parley.db"
    )
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=database_url)
    assert app.config["REDIS_PREFIX"] == default_redis_prefix(database_url)
    assert app.config["RATELIMIT_KEY_PREFIX"] == app.config["REDIS_PREFIX"]
    named = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=database_url, REDIS_PREFIX="blue")
    assert named.config["REDIS_PREFIX"] == "blue" == named.config["RATELIMIT_KEY_PREFIX"]
