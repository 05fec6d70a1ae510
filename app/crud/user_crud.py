"""SQL for the users domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.database import db
from app.database.base import in_lists
from app.models.user_models import User


def get_user(user_id: int) -> User | None:
    """Return the user with this id, active or not."""
    return db.session.get(User, user_id)


_users = sa.inspect(User).local_table

#: The caller's own account, built once as a Core statement (the hot path of ``GET /users/me``).
_ACCOUNT = sa.select(
    _users.c.id,
    _users.c.username,
    _users.c.display_name,
    _users.c.created_at,
    _users.c.email,
    _users.c.is_admin,
    _users.c.is_active,
    _users.c.show_presence,
).where(_users.c.id == sa.bindparam("user_id", type_=sa.BigInteger))


def get_account(user_id: int) -> dict[str, Any] | None:
    """Return the user's public and private fields as a mapping, active or not."""
    row = db.session.execute(_ACCOUNT, {"user_id": user_id}).first()
    return dict(row._mapping) if row else None


def get_user_for_update(user_id: int) -> User | None:
    """Return the user with this id, locking the row for the current transaction."""
    # populate_existing: an object this session loaded earlier gets the locked row's values.
    return db.session.scalar(
        sa.select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def find_user_id(login_key: str) -> int | None:
    """Return the id of the account whose email or username key is ``login_key``."""
    column = User.email if "@" in login_key else User.username_key
    return db.session.scalar(sa.select(User.id).where(column == login_key))


def get_user_by_email(email: str) -> User | None:
    """Return the user with this (lower-cased) email."""
    return db.session.scalar(sa.select(User).where(User.email == email))


def get_user_by_username_key(username_key: str) -> User | None:
    """Return the user whose lower-cased username is ``username_key``."""
    return db.session.scalar(sa.select(User).where(User.username_key == username_key))


def email_or_username_taken(
    email: str | None, username_key: str, exclude_id: int | None = None
) -> tuple[bool, bool]:
    """Tell whether the email and the username are held by another user."""
    condition = User.username_key == username_key
    if email is not None:
        condition = sa.or_(condition, User.email == email)
    stmt = sa.select(User.email, User.username_key).where(condition)
    if exclude_id is not None:
        stmt = stmt.where(User.id != exclude_id)
    rows = db.session.execute(stmt).all()
    return (
        email is not None and any(row.email == email for row in rows),
        any(row.username_key == username_key for row in rows),
    )


def add_user(user: User) -> User:
    """Add a new user and flush so it has an id."""
    db.session.add(user)
    db.session.flush()
    return user


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_active_users(prefix: str, after_key: str | None, limit: int) -> Sequence[User]:
    """Active users whose username or display name starts with ``prefix``, by username."""
    pattern = _escape_like(prefix.lower()) + "%"
    stmt = (
        sa.select(User)
        .where(
            User.is_active.is_(True),
            sa.or_(
                User.username_key.like(pattern, escape="\\"),
                sa.func.lower(User.display_name).like(pattern, escape="\\"),
            ),
        )
        .order_by(User.username_key)
        .limit(limit)
    )
    if after_key is not None:
        stmt = stmt.where(User.username_key > after_key)
    return db.session.scalars(stmt).all()


def list_users(after_id: int | None, limit: int) -> Sequence[User]:
    """Every user, active or not, by id."""
    stmt = sa.select(User).order_by(User.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(User.id > after_id)
    return db.session.scalars(stmt).all()


def count_other_active_admins(user_id: int) -> int:
    """Count the active admins other than ``user_id``."""
    stmt = (
        sa.select(sa.func.count())
        .select_from(User)
        .where(User.is_admin.is_(True), User.is_active.is_(True), User.id != user_id)
    )
    return db.session.scalar(stmt) or 0


def lock_admins() -> None:
    """Lock the admin rows so two demotions cannot both leave the other as the last admin."""
    db.session.execute(
        sa.select(User.id).where(User.is_admin.is_(True)).order_by(User.id).with_for_update()
    )


def flush() -> None:
    """Send pending changes to the database now (constraint violations surface here)."""
    db.session.flush()


def active_user_ids(user_ids: Sequence[int]) -> set[int]:
    """Return the subset of ``user_ids`` that are existing, active users."""
    if not user_ids:
        return set()
    stmt = sa.select(User.id).where(User.id.in_(user_ids), User.is_active.is_(True))
    return set(db.session.scalars(stmt))


def get_users(user_ids: Sequence[int]) -> Sequence[User]:
    """Return the users with these ids (active or not)."""
    if not user_ids:
        return []
    return db.session.scalars(sa.select(User).where(User.id.in_(user_ids))).all()


def come_online(user_id: int, now: datetime, offline_before: datetime) -> bool | None:
    """Set ``last_seen_at`` to ``now`` if it was older than ``offline_before`` (or never set).

    Returns the user's ``show_presence`` when it did (the user was offline and comes online),
    None when the user was online already. One conditional statement: of two processes racing,
    one wins.
    """
    stmt = (
        sa.update(_users)
        .where(
            _users.c.id == user_id,
            sa.or_(_users.c.last_seen_at.is_(None), _users.c.last_seen_at < offline_before),
        )
        .values(last_seen_at=now, updated_at=_users.c.updated_at)
        .returning(_users.c.show_presence)
    )
    return db.session.execute(stmt).scalar()


def mark_seen(user_ids: Sequence[int], now: datetime) -> None:
    """Set these users' ``last_seen_at`` to ``now`` (never back); ``updated_at`` stays."""
    for ids in in_lists(sorted(user_ids)):  # rows locked in one order by every process
        db.session.execute(
            sa.update(_users)
            .where(
                _users.c.id.in_(ids),
                sa.or_(_users.c.last_seen_at.is_(None), _users.c.last_seen_at < now),
            )
            .values(last_seen_at=now, updated_at=_users.c.updated_at)
        )


def presence(user_ids: Sequence[int]) -> dict[int, tuple[datetime | None, bool]]:
    """Return each user's ``last_seen_at`` and ``show_presence``."""
    found: dict[int, tuple[datetime | None, bool]] = {}
    columns = (_users.c.id, _users.c.last_seen_at, _users.c.show_presence)
    for ids in in_lists(user_ids):
        rows = db.session.execute(sa.select(*columns).where(_users.c.id.in_(ids)))
        found.update((row.id, (row.last_seen_at, row.show_presence)) for row in rows)
    return found
