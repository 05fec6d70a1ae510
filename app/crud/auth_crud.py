"""SQL for the auth domain: sessions and refresh tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from app.database import db
from app.database.base import UTCDateTime, in_lists
from app.models.auth_models import AuthSession, PasswordReset, RefreshToken


def add_session(session: AuthSession) -> AuthSession:
    """Add a new login session and flush so it has an id."""
    db.session.add(session)
    db.session.flush()
    return session


def add_refresh_token(token: RefreshToken) -> RefreshToken:
    """Store a new refresh token (its digest)."""
    db.session.add(token)
    db.session.flush()
    return token


def get_session(session_id: int) -> AuthSession | None:
    """Return a session by id."""
    return db.session.get(AuthSession, session_id)


def get_refresh_token(token_hash: str) -> RefreshToken | None:
    """Return the refresh token with this digest."""
    return db.session.scalar(sa.select(RefreshToken).where(RefreshToken.token_hash == token_hash))


def _spend(model: type[RefreshToken] | type[PasswordReset], row_id: int, now: datetime) -> bool:
    # One conditional UPDATE: of two racing requests, exactly one sees a row change.
    result = db.session.execute(
        sa.update(model)
        .where(model.id == row_id, model.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def spend_refresh_token(token_id: int, now: datetime) -> bool:
    """Mark a refresh token used; False when another request spent it first."""
    return _spend(RefreshToken, token_id, now)


_sessions = sa.inspect(AuthSession).local_table

#: The per-request session check, built once: a plain Core statement on the table skips the ORM's
#: per-execution work, which costs more than the index lookup itself.
_LIVE_SESSION = sa.select(_sessions.c.user_id, _sessions.c.last_used_at).where(
    _sessions.c.id == sa.bindparam("session_id", type_=sa.BigInteger),
    _sessions.c.revoked_at.is_(None),
    _sessions.c.expires_at > sa.bindparam("now", type_=UTCDateTime),
)


def live_session_row(session_id: int, now: datetime) -> tuple[int, datetime] | None:
    """Return ``(user_id, last_used_at)`` of an unrevoked, unexpired session, else None."""
    row = db.session.execute(_LIVE_SESSION, {"session_id": session_id, "now": now}).first()
    return (row.user_id, row.last_used_at) if row else None


def live_session_ids(session_ids: Sequence[int], now: datetime) -> set[int]:
    """Return which of these sessions are unrevoked and unexpired (a statement per thousand)."""
    live: set[int] = set()
    for ids in in_lists(session_ids):
        stmt = sa.select(_sessions.c.id).where(
            _sessions.c.id.in_(ids),
            _sessions.c.revoked_at.is_(None),
            _sessions.c.expires_at > now,
        )
        live.update(db.session.scalars(stmt))
    return live


def touch_session(session_id: int, now: datetime) -> None:
    """Record that the session was just used."""
    db.session.execute(
        sa.update(AuthSession)
        .where(AuthSession.id == session_id)
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def list_live_sessions(user_id: int, now: datetime) -> Sequence[AuthSession]:
    """Return the user's unrevoked, unexpired sessions, newest first."""
    return db.session.scalars(
        sa.select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .order_by(AuthSession.created_at.desc(), AuthSession.id.desc())
    ).all()


def revoke_sessions(
    user_id: int, now: datetime, *, only_id: int | None = None, except_id: int | None = None
) -> int:
    """Revoke the user's live sessions (one, all, or all but one); return how many."""
    stmt = (
        sa.update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if only_id is not None:
        stmt = stmt.where(AuthSession.id == only_id)
    if except_id is not None:
        stmt = stmt.where(AuthSession.id != except_id)
    return db.session.execute(stmt).rowcount  # type: ignore[attr-defined]


def delete_dead_sessions(now: datetime) -> int:
    """Delete expired and revoked sessions (their refresh tokens go with them)."""
    dead = sa.or_(AuthSession.revoked_at.is_not(None), AuthSession.expires_at <= now)
    dead_ids = sa.select(AuthSession.id).where(dead)
    db.session.execute(
        sa.delete(RefreshToken)
        .where(RefreshToken.session_id.in_(dead_ids))
        .execution_options(synchronize_session=False)
    )
    result = db.session.execute(
        sa.delete(AuthSession).where(dead).execution_options(synchronize_session=False)
    )
    return result.rowcount  # type: ignore[attr-defined]


def add_password_reset(reset: PasswordReset) -> PasswordReset:
    """Store a new password-reset token (its digest)."""
    db.session.add(reset)
    db.session.flush()
    return reset


def get_password_reset(token_hash: str) -> PasswordReset | None:
    """Return the password-reset token with this digest."""
    return db.session.scalar(sa.select(PasswordReset).where(PasswordReset.token_hash == token_hash))


def spend_password_reset(reset_id: int, now: datetime) -> bool:
    """Mark a reset token used; False when it was already used (a racing second use)."""
    return _spend(PasswordReset, reset_id, now)


def delete_dead_password_resets(now: datetime) -> int:
    """Delete used and expired reset tokens."""
    result = db.session.execute(
        sa.delete(PasswordReset)
        .where(sa.or_(PasswordReset.used_at.is_not(None), PasswordReset.expires_at <= now))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount  # type: ignore[attr-defined]
