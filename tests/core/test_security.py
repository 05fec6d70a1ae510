"""Password hashing and token helpers."""

from __future__ import annotations

import pytest

from app.core import security
from config import OWASP_SCRYPT


def test_hash_and_verify() -> None:
    stored = security.hash_password("correct horse battery", "scrypt:1024:8:1")
    assert stored.startswith("scrypt:1024:8:1$")
    assert security.verify_password(stored, "correct horse battery")
    assert not security.verify_password(stored, "wrong")


def test_owasp_default_hashes_and_verifies() -> None:
    stored = security.hash_password("correct horse battery", OWASP_SCRYPT)
    assert security.verify_password(stored, "correct horse battery")
    assert not security.hash_needs_update(stored, OWASP_SCRYPT)
    assert security.hash_needs_update(stored, "scrypt:32768:8:1")


@pytest.mark.parametrize(
    "stored", [None, "", "nonsense", "pbkdf2:sha256$x", "scrypt:a:b:c$s$h", "scrypt$$"]
)
def test_corrupt_hashes_never_verify(stored: str | None) -> None:
    assert security.verify_password(stored, "anything") is False


def test_burn_password_check_does_a_real_check_at_the_given_strength(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unknown login costs one scrypt check with the configured parameters, like a real one."""
    checked: list[tuple[str, str]] = []
    real_check = security.check_password_hash

    def spy(stored: str, password: str) -> bool:
        checked.append((stored, password))
        return real_check(stored, password)

    monkeypatch.setattr(security, "check_password_hash", spy)
    security.burn_password_check("whatever", "scrypt:1024:8:1")
    [(stored, password)] = checked
    assert stored.startswith("scrypt:1024:8:1$") and password == "whatever"
    assert not security.hash_needs_update(stored, "scrypt:1024:8:1")


def test_tokens() -> None:
    first, second = security.new_opaque_token(), security.new_opaque_token()
    assert first != second and len(first) >= 43
    assert security.hash_token(first) == security.hash_token(first)
    assert len(security.hash_token(first)) == 64
    assert security.signature_matches("v", security.sign("v", "k"), "k")
    assert not security.signature_matches("v", security.sign("v", "k"), "other")


def test_on_gevent_password_work_runs_on_a_real_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under gevent, scrypt goes to gevent's pool of OS threads, off the event loop."""
    import threading

    ran_on: list[int] = []
    real_hash = security._hash

    def spy(password: str, method: str) -> str:
        ran_on.append(threading.get_ident())
        return real_hash(password, method)

    monkeypatch.setattr(security, "on_gevent", lambda: True)
    monkeypatch.setattr(security, "_hash", spy)
    stored = security.hash_password("correct horse battery", "scrypt:1024:8:1")
    assert security.verify_password(stored, "correct horse battery")
    assert ran_on and ran_on[0] != threading.get_ident()
