"""The event log: what changed, per user, in the order the changes committed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.database import db
from app.database.base import BigId, UTCDateTime, utcnow


class EventCounter(db.Model):  # type: ignore[name-defined]
    """A user's event sequence: the newest position written, and how far it was pruned."""

    __tablename__ = "event_counters"

    user_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("users.id"), primary_key=True)
    #: Position of the user's newest event; taken under this row's lock, so in commit order.
    last_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    #: Every event at or below this position was deleted by retention.
    pruned_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")


class UserEvent(db.Model):  # type: ignore[name-defined]
    """One event in one user's log."""

    __tablename__ = "user_events"

    user_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("users.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(32))
    conversation_id: Mapped[int | None] = mapped_column(BigId)
    #: For member events: the user who joined or left.
    subject_id: Mapped[int | None] = mapped_column(BigId)
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<UserEvent {self.user_id}#{self.seq} {self.type}>"
