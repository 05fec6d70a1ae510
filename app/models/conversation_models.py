"""The conversations domain: conversations, their members and their messages."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.utils import KINDS, MEMBER, ROLES
from app.database import db
from app.database.base import BigId, UTCDateTime, utcnow


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Conversation(db.Model):  # type: ignore[name-defined]
    """A direct (two people, or one with themself) or group conversation."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    title: Mapped[str | None] = mapped_column(sa.String(200))
    #: ``"<low id>:<high id>"`` of a direct conversation's pair; unique, so a pair has one.
    direct_key: Mapped[str | None] = mapped_column(sa.String(41), unique=True)
    created_by: Mapped[int] = mapped_column(BigId, sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: ``seq`` of the newest message; bumped under the row lock by every send, so gap-free.
    last_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    #: Creation or newest message, whichever is later: the order of conversation lists.
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(_one_of("kind", KINDS), name="kind"),
        sa.Index("ix_conversations_last_activity", "last_activity_at", "id"),
    )

    def __repr__(self) -> str:
        return f"<Conversation {self.id} {self.kind}>"


class Member(db.Model):  # type: ignore[name-defined]
    """A user's membership of a conversation, with their role and read marker."""

    __tablename__ = "conversation_members"

    conversation_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(8), default=MEMBER)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Messages with ``seq`` above this are unread for the user.
    last_read_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    #: A copy of the conversation's ``last_activity_at``, kept equal by every send, so that a
    #: user's conversation list is read in order from this table's index, one page at a time.
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(_one_of("role", ROLES), name="role"),
        sa.Index(
            "ix_conversation_members_user_activity",
            "user_id",
            "last_activity_at",
            "conversation_id",
        ),
    )

    def __repr__(self) -> str:
        return f"<Member {self.user_id} of {self.conversation_id} {self.role}>"


class Message(db.Model):  # type: ignore[name-defined]
    """A message; deleting leaves a tombstone that keeps its ``seq``."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    sender_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("users.id"))
    #: None once deleted.
    body: Mapped[str | None] = mapped_column(sa.Text)
    #: The sender's idempotency key: one message per (conversation, sender, client_id).
    client_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # Also the index of history pages and unread counts: (conversation, seq range).
        sa.UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
        sa.UniqueConstraint(
            "conversation_id", "sender_id", "client_id", name="uq_messages_client_id"
        ),
    )

    @property
    def deleted(self) -> bool:
        """Whether the message was deleted (a tombstone)."""
        return self.deleted_at is not None

    def __repr__(self) -> str:
        return f"<Message {self.conversation_id}#{self.seq}>"
