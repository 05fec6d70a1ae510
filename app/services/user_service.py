"""The users domain: accounts, profiles, search and administration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy.exc as sa_exc
from flask import current_app

from app.core import security
from app.core.errors import ConflictError, ForbiddenError, NotFoundError
from app.core.pagination import decode_cursor, page_of
from app.crud import user_crud
from app.database.base import utcnow
from app.database.connection import transactional
from app.models.user_models import User


def _hash_method() -> str:
    return str(current_app.config["PASSWORD_HASH_METHOD"])


def _raise_if_taken(email: str | None, username_key: str, exclude_id: int | None = None) -> None:
    email_taken, username_taken = user_crud.email_or_username_taken(email, username_key, exclude_id)
    if email_taken:
        raise ConflictError("An account with this email already exists.", code="conflict")
    if username_taken:
        raise ConflictError("This username is taken.", code="conflict")


def hash_new_password(password: str) -> str:
    """Hash a password at the configured strength (slow: call it outside a write transaction).

    On SQLite a write transaction holds the database's one write lock: a password hash computed
    inside it would stall every other writer for its whole duration.
    """
    return security.hash_password(password, _hash_method())


def create_user(
    email: str,
    username: str,
    password: str,
    display_name: str | None = None,
    *,
    is_admin: bool = False,
) -> User:
    """Create an account; a duplicate email or username (any case) is a ConflictError."""
    return _insert_user(email, username, hash_new_password(password), display_name, is_admin)


@transactional
def _insert_user(
    email: str, username: str, password_hash: str, display_name: str | None, is_admin: bool
) -> User:
    email = email.strip().lower()
    _raise_if_taken(email, username.lower())
    user = User(
        email=email,
        username=username,
        username_key=username.lower(),
        display_name=display_name or username,
        password_hash=password_hash,
        is_admin=is_admin,
    )
    try:
        return user_crud.add_user(user)
    except sa_exc.IntegrityError:  # a concurrent registration won the race
        raise ConflictError("An account with this email or username already exists.") from None


def get_active_user(user_id: int) -> User:
    """Return an active user, or raise NotFoundError (deactivated users are not found)."""
    user = user_crud.get_user(user_id)
    if user is None or not user.is_active:
        raise NotFoundError("No such user.")
    return user


def get_own_account(user_id: int) -> dict[str, Any]:
    """Return the caller's account fields (``UserPrivate``), or raise NotFoundError.

    Reads one row without loading the ORM object: ``GET /users/me`` is the most frequent call.
    """
    account = user_crud.get_account(user_id)
    if account is None or not account["is_active"]:
        raise NotFoundError("No such user.")
    return account


def find_user(username: str) -> User:
    """Return the user with this username (any case), or raise NotFoundError."""
    user = user_crud.get_user_by_username_key(username.lower())
    if user is None:
        raise NotFoundError("No such user.")
    return user


def reset_target(email: str) -> dict[str, Any] | None:
    """Return ``{id, email, username}`` of the active account with this email, for a reset."""
    user = user_crud.get_user_by_email(email.strip().lower())
    if user is None or not user.is_active:
        return None
    return {"id": user.id, "email": user.email, "username": user.username}


@transactional
def set_password_hash(user_id: int, password_hash: str, *, unchanged_since: datetime) -> bool:
    """Set a new password without the old one (a verified reset).

    False if the account is not active, or its password changed after ``unchanged_since``.
    Locks the account row first, like every change that must not overlap a login (see
    :func:`lock_verified`). ``password_hash`` comes from :func:`hash_new_password`.
    """
    user = user_crud.get_user_for_update(user_id)
    if user is None or not user.is_active or user.password_changed_at > unchanged_since:
        return False
    user.password_hash = password_hash
    user.password_changed_at = utcnow()
    return True


def active_user_ids(user_ids: Sequence[int]) -> set[int]:
    """Return which of these ids belong to existing, active users (for other domains)."""
    return user_crud.active_user_ids(list(user_ids))


def public_profiles(user_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Return UserPublic fields by id, deactivated users included (for other domains)."""
    return {
        user.id: {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "created_at": user.created_at,
            "is_active": user.is_active,
        }
        for user in user_crud.get_users(list(user_ids))
    }


@dataclass(frozen=True)
class VerifiedPassword:
    """A password found to match an account, and the stored hash it matched.

    Verifying costs tens of milliseconds, so it happens before the write transaction that acts on
    it; that transaction then calls :func:`lock_verified`, which makes sure the account is still
    active with that same hash. A deactivation or password change that commits in between makes
    the check fail, so no session can outlive the revocation it raced with.
    """

    user_id: int
    password_hash: str
    #: The same password hashed at the configured parameters, when the stored hash is older.
    upgraded_hash: str | None = None


def _verified(user: User, password: str) -> VerifiedPassword | None:
    if not security.verify_password(user.password_hash, password) or not user.is_active:
        return None
    upgraded = None
    if security.hash_needs_update(user.password_hash, _hash_method()):
        upgraded = hash_new_password(password)
    return VerifiedPassword(user.id, user.password_hash, upgraded)


def verify_credentials(login: str, password: str) -> VerifiedPassword | None:
    """Check ``login`` (email or username) and password against an active account.

    Every failure costs one password check, so unknown, deactivated and wrong-password logins
    take about the same time. Call it outside a write transaction (it is slow), then
    :func:`lock_verified` inside the one that acts on it.
    """
    key = login.strip().lower()
    user = (
        user_crud.get_user_by_email(key) if "@" in key else user_crud.get_user_by_username_key(key)
    )
    if user is None:
        security.burn_password_check(password, _hash_method())
        return None
    return _verified(user, password)


def verify_password(user_id: int, password: str) -> VerifiedPassword | None:
    """Check the password of an active account by id (outside a write transaction)."""
    user = user_crud.get_user(user_id)
    if user is None or not user.is_active:
        return None
    return _verified(user, password)


def account_key(login: str) -> str:
    """Name the account a login, username or email refers to, for per-account rate limits.

    ``alice`` and ``alice@example.com`` are one account and one key; a name that belongs to no
    account is keyed by the name itself.
    """
    key = login.strip().lower()[:254]
    user_id = user_crud.find_user_id(key)
    return f"user:{user_id}" if user_id is not None else f"name:{key}"


def _lock_verified_user(verified: VerifiedPassword) -> User | None:
    user = user_crud.get_user_for_update(verified.user_id)
    if user is None or not user.is_active or user.password_hash != verified.password_hash:
        return None
    if verified.upgraded_hash is not None:
        user.password_hash = verified.upgraded_hash
    return user


def lock_verified(verified: VerifiedPassword) -> bool:
    """Lock the account row (within the caller's transaction); True if it is still verified.

    The account must still be active with the hash the password matched. An upgraded hash is
    stored now. Logins, password changes, resets and deactivations all take this row lock
    before they write, so they happen one after the other for one account.
    """
    return _lock_verified_user(verified) is not None


def replace_password(verified: VerifiedPassword, new_hash: str) -> bool:
    """Replace a verified password (within the caller's transaction); False if it changed."""
    user = _lock_verified_user(verified)
    if user is None:
        return False
    user.password_hash = new_hash
    user.password_changed_at = utcnow()
    return True


@transactional
def update_profile(
    user_id: int,
    *,
    display_name: str | None = None,
    username: str | None = None,
    show_presence: bool | None = None,
) -> User:
    """Change the caller's profile and settings (ConflictError if the username is taken)."""
    user = get_active_user(user_id)
    if show_presence is not None:
        user.show_presence = show_presence
    if username is not None and username.lower() != user.username_key:
        _raise_if_taken(None, username.lower(), exclude_id=user.id)
    if username is not None:
        user.username = username
        user.username_key = username.lower()
    if display_name is not None:
        user.display_name = display_name
    try:
        user_crud.flush()
    except sa_exc.IntegrityError:
        raise ConflictError("This username is taken.") from None
    return user


@transactional
def come_online(user_id: int, now: datetime, offline_before: datetime) -> bool | None:
    """Record that the user holds an event connection from ``now`` on.

    When they were last seen before ``offline_before`` (offline), returns their
    ``show_presence``; None when they were online already.
    """
    shown = user_crud.come_online(user_id, now, offline_before)
    if shown is None:
        user_crud.mark_seen([user_id], now)
    return shown


@transactional
def mark_seen(user_ids: Sequence[int], now: datetime) -> None:
    """Record that these users held an event connection at ``now``."""
    user_crud.mark_seen(user_ids, now)


def presence(user_ids: Sequence[int]) -> dict[int, tuple[datetime | None, bool]]:
    """Return each user's ``last_seen_at`` and ``show_presence``."""
    return user_crud.presence(user_ids)


def deactivate_verified(verified: VerifiedPassword) -> None:
    """Deactivate an account whose password was just checked, within the caller's transaction.

    ForbiddenError when the password changed since it was checked; ConflictError for the last
    active admin. Ending the account's sessions is the caller's part (``auth_service``).
    """
    user = get_active_user(verified.user_id)
    _ensure_not_last_admin(user)  # locks the admin rows first: the one lock order, see below
    if not lock_verified(verified):  # changed since it was checked: check again
        raise ForbiddenError("The password is incorrect.", code="invalid_credentials")
    user.is_active = False


def search_users(q: str, limit: int, cursor: str | None) -> tuple[Sequence[User], str | None]:
    """Active users whose username or display name starts with ``q`` (any case)."""
    after = decode_cursor(cursor, 1)[0] if cursor else None
    if after is not None and not isinstance(after, str):  # pragma: no cover - signed by us
        after = None
    rows = user_crud.search_active_users(q, after, limit + 1)
    return page_of(list(rows), limit, lambda u: [u.username_key])


def require_admin(user_id: int) -> None:
    """Raise ForbiddenError unless the user is an active admin."""
    user = user_crud.get_user(user_id)
    if user is None or not user.is_admin or not user.is_active:
        raise ForbiddenError("Administrators only.")


def admin_list_users(
    actor_id: int, limit: int, cursor: str | None
) -> tuple[Sequence[User], str | None]:
    """Every account, active or not, by id (admins only)."""
    require_admin(actor_id)
    after = decode_cursor(cursor, 1)[0] if cursor else None
    rows = user_crud.list_users(after if isinstance(after, int) else None, limit + 1)
    return page_of(list(rows), limit, lambda u: [u.id])


def _ensure_not_last_admin(user: User) -> None:
    if user.is_admin:
        user_crud.lock_admins()
        if user_crud.count_other_active_admins(user.id) == 0:
            raise ConflictError("The last active administrator cannot be removed.")


def admin_update_user(
    actor_id: int, user_id: int, *, is_active: bool | None = None, is_admin: bool | None = None
) -> tuple[User, bool]:
    """Activate, deactivate, promote or demote an account (admins only); True if deactivated.

    Within the caller's transaction; the last active admin stays one. Ending a deactivated
    account's sessions is the caller's part (``auth_service``).
    """
    # Locks in one order, whoever acts on whom: every admin row (by id), then the target. Two
    # admins acting on each other would otherwise each hold one row and wait for the other's.
    require_admin(actor_id)
    user_crud.lock_admins()
    require_admin(actor_id)  # again under the lock: the actor may have just lost the role
    user = user_crud.get_user_for_update(user_id)
    if user is None:
        raise NotFoundError("No such user.")
    if (is_active is False and user.is_active) or (is_admin is False and user.is_admin):
        _ensure_not_last_admin(user)
    deactivated = is_active is False and user.is_active
    if is_admin is not None:
        user.is_admin = is_admin
    if is_active is not None:
        user.is_active = is_active
    return user, deactivated
