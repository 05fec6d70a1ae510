"""The users domain: accounts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.database import db
from app.database.base import IDS_NEVER_REUSED, BigId, UTCDateTime, utcnow


class User(db.Model):  # type: ignore[name-defined]
    """A person or bot with an account."""

    __tablename__ = "users"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: Stored lower-cased; unique.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    #: As the user typed it, for display.
    username: Mapped[str] = mapped_column(sa.String(32))
    #: ``username`` lower-cased: uniqueness and prefix search are case-insensitive.
    username_key: Mapped[str] = mapped_column(sa.String(32), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(64))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    #: Set whenever the password changes.
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: False: the user is always ``offline``, last seen never, to everyone else.
    show_presence: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    #: When the user last held an event connection (refreshed while they hold one); presence.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"
