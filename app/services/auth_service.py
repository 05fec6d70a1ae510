"""The auth domain: login sessions, access and refresh tokens, revocation.

A login creates a session. Access tokens are short-lived JWTs naming the session (``sid``);
refresh tokens are opaque random strings stored as SHA-256 digests. Each refresh spends the token
presented and issues a new one; presenting a spent token again means it was stolen or replayed,
so the whole session is revoked. Every protected request checks that its session is live; a
deactivated account has all its sessions revoked, so that one check covers it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict

from flask import current_app
from flask_jwt_extended import create_access_token

from app.core import mail, security
from app.core.errors import (
    AppError,
    ForbiddenError,
    InvalidCredentialsError,
    NotFoundError,
    OAuthError,
    UnauthorizedError,
)
from app.crud import auth_crud
from app.database.base import utcnow
from app.database.connection import after_commit, transactional
from app.models.auth_models import AuthSession, PasswordReset, RefreshToken
from app.services import event_service, user_service

#: How stale ``last_used_at`` may get before a request writes it again.
TOUCH_INTERVAL = timedelta(minutes=1)


class TokenPair(TypedDict):
    """The body of a successful login, token or refresh call."""

    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


def _issue_tokens(session: AuthSession) -> TokenPair:
    config = current_app.config
    refresh_token = security.new_opaque_token()
    now = utcnow()
    expires_at = now + config["REFRESH_TOKEN_EXPIRES"]
    auth_crud.add_refresh_token(
        RefreshToken(
            session_id=session.id,
            token_hash=security.hash_token(refresh_token),
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.expires_at = expires_at
    session.last_used_at = now
    access_expires: timedelta = config["JWT_ACCESS_TOKEN_EXPIRES"]
    access_token = create_access_token(
        identity=str(session.user_id), additional_claims={"sid": session.id}
    )
    return TokenPair(
        access_token=access_token,
        refresh_token=refresh_token,
        token_type="Bearer",
        expires_in=int(access_expires.total_seconds()),
    )


def _revoke_sessions(
    user_id: int, now: datetime, *, only_id: int | None = None, except_id: int | None = None
) -> int:
    """Revoke sessions (within the caller's transaction); their waiting event readers wake.

    A long-poll or stream waiting on a revoked session checks it when it wakes and ends, so
    the wake-up after the commit ends them at once instead of at their next event.
    """
    revoked: int = auth_crud.revoke_sessions(user_id, now, only_id=only_id, except_id=except_id)
    if revoked:
        event_service.wake_after_commit([user_id])
    return revoked


def _clip_user_agent(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    # Headers arrive as latin-1; keep what a column can hold and a person can read.
    return "".join(ch for ch in user_agent if ch.isprintable())[:255] or None


def login(login: str, password: str, user_agent: str | None) -> TokenPair:
    """Start a session for valid credentials; any failure is InvalidCredentialsError.

    The password is checked first, outside any write transaction (it is slow); the session is
    then inserted under the account's row lock, only if the account is still active with the
    password that was checked. A deactivation, password change or reset that commits meanwhile
    therefore either sees the new session (and revokes it) or makes the login fail.
    """
    verified = user_service.verify_credentials(login, password)
    if verified is None:
        raise InvalidCredentialsError()
    return _start_session(verified, user_agent)


@transactional
def _start_session(verified: user_service.VerifiedPassword, user_agent: str | None) -> TokenPair:
    if not user_service.lock_verified(verified):
        raise InvalidCredentialsError()
    now = utcnow()
    session = auth_crud.add_session(
        AuthSession(
            user_id=verified.user_id,
            created_at=now,
            last_used_at=now,
            expires_at=now,
            user_agent=_clip_user_agent(user_agent),
        )
    )
    return _issue_tokens(session)


def password_grant(username: str, password: str, user_agent: str | None) -> TokenPair:
    """OAuth2 resource-owner password grant: login with RFC 6749 errors."""
    try:
        return login(username, password, user_agent)
    except InvalidCredentialsError:
        raise OAuthError("invalid_grant", "The username or password is incorrect.") from None


def refresh_grant(refresh_token: str, user_agent: str | None) -> TokenPair:
    """OAuth2 refresh grant: rotation with RFC 6749 errors."""
    try:
        return refresh(refresh_token, user_agent)
    except UnauthorizedError as error:
        raise OAuthError("invalid_grant", error.message) from None


def refresh(refresh_token: str, user_agent: str | None) -> TokenPair:
    """Exchange a refresh token for a new pair; the token presented is spent.

    A spent token presented again revokes its whole session (``token_revoked``).
    """
    outcome, pair = _rotate(refresh_token, user_agent)
    if pair is None:
        message, code = _REFRESH_ERRORS[outcome]
        raise UnauthorizedError(message, code=code)
    return pair


_REFRESH_ERRORS = {
    "invalid": ("The refresh token is invalid.", "token_invalid"),
    "expired": ("The refresh token has expired.", "token_expired"),
    "revoked": ("The session has been revoked.", "token_revoked"),
}


@transactional
def _rotate(refresh_token: str, user_agent: str | None) -> tuple[str, TokenPair | None]:
    # Returns an outcome instead of raising, so that a revocation for reuse is committed.
    now = utcnow()
    token = auth_crud.get_refresh_token(security.hash_token(refresh_token))
    if token is None:
        return "invalid", None
    session = auth_crud.get_session(token.session_id)
    if session is None or session.revoked_at is not None:
        return "revoked", None
    if not auth_crud.spend_refresh_token(token.id, now):
        _revoke_sessions(session.user_id, now, only_id=session.id)
        return "revoked", None
    if token.expires_at <= now:
        return "expired", None
    if user_agent:
        session.user_agent = _clip_user_agent(user_agent)
    return "ok", _issue_tokens(session)


def check_access(claims: dict[str, Any]) -> bool:
    """Tell whether an access token's session is still live (the per-request check).

    Refreshes the session's ``last_used_at`` at most once a minute.
    """
    try:
        session_id = int(claims["sid"])
        user_id = int(claims["sub"])
    except (KeyError, TypeError, ValueError):
        return False
    now = utcnow()
    row = auth_crud.live_session_row(session_id, now)
    if row is None or row[0] != user_id:
        return False
    if now - row[1] > TOUCH_INTERVAL:
        _touch(session_id)
    return True


def live_sessions(session_ids: Sequence[int]) -> set[int]:
    """Return which of these sessions are still live (for the checks of open event streams)."""
    return auth_crud.live_session_ids(session_ids, utcnow()) if session_ids else set()


@transactional
def _touch(session_id: int) -> None:
    auth_crud.touch_session(session_id, utcnow())


@transactional
def logout(user_id: int, session_id: int) -> None:
    """Revoke the caller's current session: its access and refresh tokens stop working."""
    _revoke_sessions(user_id, utcnow(), only_id=session_id)


def list_sessions(user_id: int, current_session_id: int) -> list[dict[str, Any]]:
    """Return the caller's live sessions, newest first, the current one marked."""
    sessions: Sequence[AuthSession] = auth_crud.list_live_sessions(user_id, utcnow())
    return [
        {
            "id": s.id,
            "created_at": s.created_at,
            "last_used_at": s.last_used_at,
            "user_agent": s.user_agent,
            "current": s.id == current_session_id,
        }
        for s in sessions
    ]


@transactional
def revoke_session(user_id: int, session_id: int) -> None:
    """Revoke one of the caller's live sessions; anyone else's (or a dead one) is not found."""
    if _revoke_sessions(user_id, utcnow(), only_id=session_id) == 0:
        raise NotFoundError("No such session.")


def change_password(
    user_id: int, current_session_id: int, current_password: str, new_password: str
) -> None:
    """Change the password and revoke every other session of the user.

    A wrong current password is ForbiddenError (``invalid_credentials``); so is one that another
    request changed after it was checked here.
    """
    verified = user_service.verify_password(user_id, current_password)
    if verified is None:
        raise _WRONG_PASSWORD
    _replace_password(verified, user_service.hash_new_password(new_password), current_session_id)


_WRONG_PASSWORD = ForbiddenError("The current password is incorrect.", code="invalid_credentials")


@transactional
def _replace_password(
    verified: user_service.VerifiedPassword, new_hash: str, current_session_id: int
) -> None:
    if not user_service.replace_password(verified, new_hash):
        raise _WRONG_PASSWORD
    _revoke_sessions(verified.user_id, utcnow(), except_id=current_session_id)


def close_own_account(user_id: int, password: str) -> None:
    """Deactivate the caller's account after checking the password; every session ends.

    A wrong password (or one changed meanwhile) is ForbiddenError (``invalid_credentials``).
    """
    verified = user_service.verify_password(user_id, password)
    if verified is None:
        raise ForbiddenError("The password is incorrect.", code="invalid_credentials")
    _close_verified_account(verified)


@transactional
def _close_verified_account(verified: user_service.VerifiedPassword) -> None:
    user_service.deactivate_verified(verified)
    _revoke_sessions(verified.user_id, utcnow())


@transactional
def update_account_as_admin(
    actor_id: int, user_id: int, *, is_active: bool | None = None, is_admin: bool | None = None
) -> Any:
    """Activate, deactivate, promote or demote an account (admins only).

    Deactivating ends every session of the account, in the same transaction.
    """
    user, deactivated = user_service.admin_update_user(
        actor_id, user_id, is_active=is_active, is_admin=is_admin
    )
    if deactivated:
        _revoke_sessions(user_id, utcnow())
    return user


@transactional
def prune_sessions() -> int:
    """Delete expired and revoked sessions (and used or expired reset tokens); return how many."""
    now = utcnow()
    auth_crud.delete_dead_password_resets(now)
    return auth_crud.delete_dead_sessions(now)


RESET_SUBJECT = "Reset your Parley password"


@transactional
def request_password_reset(email: str) -> None:
    """Mail a single-use reset token to the account with this email, if there is one.

    The answer and its timing are the same either way: the mail leaves from a background
    thread, so neither SMTP's speed nor its failure shows in the response.
    """
    target = user_service.reset_target(email)
    if target is None:
        return
    token = security.new_opaque_token()
    now = utcnow()
    auth_crud.add_password_reset(
        PasswordReset(
            user_id=target["id"],
            token_hash=security.hash_token(token),
            created_at=now,
            expires_at=now + current_app.config["PASSWORD_RESET_EXPIRES"],
        )
    )
    message = mail.compose(
        target["email"],
        RESET_SUBJECT,
        "password_reset.txt",
        username=target["username"],
        token=token,
    )
    after_commit(lambda: mail.send_later(message))


def confirm_password_reset(token: str, new_password: str) -> None:
    """Set a new password with a reset token; every session of the user is revoked.

    The token must be unused, unexpired, and newer than the last password change.
    """
    _usable_reset(token)  # a bad token costs no password hash
    _reset_password(token, user_service.hash_new_password(new_password))


def _invalid_reset() -> AppError:
    return AppError("The reset token is invalid, used or expired.", code="invalid_token")


def _usable_reset(token: str) -> PasswordReset:
    reset = auth_crud.get_password_reset(security.hash_token(token))
    if reset is None or reset.used_at is not None or reset.expires_at <= utcnow():
        raise _invalid_reset()
    return reset


@transactional
def _reset_password(token: str, new_hash: str) -> None:
    reset = _usable_reset(token)
    now = utcnow()
    if not auth_crud.spend_password_reset(reset.id, now):
        raise _invalid_reset()
    # Under the account's row lock: refused when the password changed after the token was made.
    changed_after = reset.created_at
    if not user_service.set_password_hash(reset.user_id, new_hash, unchanged_since=changed_after):
        raise _invalid_reset()
    _revoke_sessions(reset.user_id, now)
