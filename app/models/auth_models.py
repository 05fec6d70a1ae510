"""The auth domain: login sessions and their refresh tokens."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.database import db
from app.database.base import IDS_NEVER_REUSED, BigId, UTCDateTime, utcnow


class AuthSession(db.Model):  # type: ignore[name-defined]
    """One login: every access and refresh token descended from it carries its id."""

    __tablename__ = "auth_sessions"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the newest refresh token of the session expires; the session ends then.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: Set once the session is revoked (logout, reuse detected, password change, ...).
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(sa.String(255))

    def __repr__(self) -> str:
        return f"<AuthSession {self.id} user={self.user_id}>"


class RefreshToken(db.Model):  # type: ignore[name-defined]
    """A refresh token, stored only as a SHA-256 digest; spent ones are kept to detect reuse."""

    __tablename__ = "refresh_tokens"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set when the token is exchanged; presenting it again is reuse.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PasswordReset(db.Model):  # type: ignore[name-defined]
    """A single-use password-reset token, stored only as a SHA-256 digest."""

    __tablename__ = "password_resets"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set when the token is used; it cannot be used again.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
