"""Model invariants: UTC timestamps and readable reprs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from flask import Flask

from app.database import db
from app.database.base import UTCDateTime
from app.models import AuthSession, User
from app.schemas.fields import UTCTimestamp
from tests.factories import UserFactory


def test_timestamps_come_back_aware_in_utc(app: Flask, users: UserFactory) -> None:
    user = users.create()
    with app.app_context():
        paris = timezone(timedelta(hours=1))
        db.session.execute(
            sa.update(User)
            .where(User.id == user.id)
            .values(created_at=datetime(2026, 1, 2, 13, 0, tzinfo=paris))
        )
        db.session.commit()
        db.session.expire_all()
        stored = db.session.get(User, user.id)
        assert stored is not None
        assert stored.created_at == datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
        assert stored.created_at.utcoffset() == timedelta(0)
        assert repr(stored) == f"<User {user.id} {user.username!r}>"
        session = db.session.scalars(sa.select(AuthSession)).first()
        assert repr(session) == f"<AuthSession {session.id} user={user.id}>"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(
            datetime(2026, 1, 1), sa.create_engine("sqlite://").dialect
        )


def test_timestamp_format() -> None:
    field = UTCTimestamp()
    moment = datetime(2026, 11, 26, 10, 15, 0, 123456, tzinfo=UTC)
    assert field.serialize("t", {"t": moment}) == "2026-11-26T10:15:00.123Z"
    assert field.serialize("t", {"t": None}) is None


def test_conversation_reprs(app: Flask, users: UserFactory) -> None:
    from app.models import Conversation, Member, Message

    assert repr(Conversation(id=3, kind="group")) == "<Conversation 3 group>"
    assert repr(Member(conversation_id=3, user_id=4, role="owner")) == "<Member 4 of 3 owner>"
    assert repr(Message(conversation_id=3, seq=9)) == "<Message 3#9>"
