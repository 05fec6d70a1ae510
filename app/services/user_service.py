"""The users domain: accounts, profiles, search and administration."""

from __future__ import annotations

from collections.abc import Sequence
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
from app.services import auth_service


def _hash_method() -> str:
    return str(current_app.config["PASSWORD_HASH_METHOD"])


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


def _raise_if_taken(email: str | None, username_key: str, exclude_id: int | None = None) -> None:
    email_taken, username_taken = user_crud.email_or_username_taken(email, username_key, exclude_id)
    if email_taken:
        raise ConflictError("An account with this email already exists.", code="conflict")
    if username_taken:
        raise ConflictError("This username is taken.", code="conflict")


@transactional
def create_user(
    email: str,
    username: str,
    password: str,
    display_name: str | None = None,
    *,
    is_admin: bool = False,
) -> User:
    """Create an account; a duplicate email or username (any case) is a ConflictError."""
    email = email.strip().lower()
    _raise_if_taken(email, username.lower())
    user = User(
        email=email,
        username=username,
        username_key=username.lower(),
        display_name=display_name or username,
        password_hash=security.hash_password(password, _hash_method()),
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


def password_changed_at(user_id: int) -> datetime | None:
    """When the user's password last changed (None for an unknown user)."""
    user = user_crud.get_user(user_id)
    return user.password_changed_at if user else None


@transactional
def set_password(user_id: int, new_password: str) -> bool:
    """Set a new password without the old one (a verified reset); False if not active."""
    user = user_crud.get_user(user_id)
    if user is None or not user.is_active:
        return False
    user.password_hash = security.hash_password(new_password, _hash_method())
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


def verify_credentials(login: str, password: str) -> int | None:
    """Return the user id when ``login`` (email or username) and password match an active account.

    Every failure costs one password check, so unknown, deactivated and wrong-password logins
    take about the same time. A hash made with older parameters is upgraded on success.
    """
    method = _hash_method()
    key = login.strip().lower()
    user = (
        user_crud.get_user_by_email(key) if "@" in key else user_crud.get_user_by_username_key(key)
    )
    if user is None:
        security.burn_password_check(password, method)
        return None
    if not security.verify_password(user.password_hash, password) or not user.is_active:
        return None
    if security.hash_needs_update(user.password_hash, method):
        _rehash_password(user.id, password)
    return user.id


@transactional
def _rehash_password(user_id: int, password: str) -> None:
    user = user_crud.get_user(user_id)
    if user is not None:
        user.password_hash = security.hash_password(password, _hash_method())


@transactional
def change_password(user_id: int, current_password: str, new_password: str) -> None:
    """Replace the password after checking the current one (ForbiddenError if it is wrong)."""
    user = get_active_user(user_id)
    if not security.verify_password(user.password_hash, current_password):
        raise ForbiddenError("The current password is incorrect.", code="invalid_credentials")
    user.password_hash = security.hash_password(new_password, _hash_method())
    user.password_changed_at = utcnow()


@transactional
def update_profile(
    user_id: int, *, display_name: str | None = None, username: str | None = None
) -> User:
    """Change the caller's display name and/or username (ConflictError if the name is taken)."""
    user = get_active_user(user_id)
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
def deactivate_self(user_id: int, password: str) -> None:
    """Deactivate the caller's account after checking the password; revoke all its sessions."""
    user = get_active_user(user_id)
    if not security.verify_password(user.password_hash, password):
        raise ForbiddenError("The password is incorrect.", code="invalid_credentials")
    _ensure_not_last_admin(user)
    user.is_active = False
    auth_service.revoke_all_sessions(user.id)


def search_users(q: str, limit: int, cursor: str | None) -> tuple[Sequence[User], str | None]:
    """Active users whose username or display name starts with ``q`` (any case)."""
    after = decode_cursor(cursor, _secret(), 1)[0] if cursor else None
    if after is not None and not isinstance(after, str):  # pragma: no cover - signed by us
        after = None
    rows = user_crud.search_active_users(q, after, limit + 1)
    return page_of(list(rows), limit, lambda u: [u.username_key], _secret())


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
    after = decode_cursor(cursor, _secret(), 1)[0] if cursor else None
    rows = user_crud.list_users(after if isinstance(after, int) else None, limit + 1)
    return page_of(list(rows), limit, lambda u: [u.id], _secret())


def _ensure_not_last_admin(user: User) -> None:
    if user.is_admin:
        user_crud.lock_admins()
        if user_crud.count_other_active_admins(user.id) == 0:
            raise ConflictError("The last active administrator cannot be removed.")


@transactional
def admin_update_user(
    actor_id: int, user_id: int, *, is_active: bool | None = None, is_admin: bool | None = None
) -> User:
    """Activate, deactivate, promote or demote an account (admins only).

    Deactivating revokes every session of the account; the last active admin stays one.
    """
    require_admin(actor_id)
    user = user_crud.get_user_for_update(user_id)
    if user is None:
        raise NotFoundError("No such user.")
    if (is_active is False and user.is_active) or (is_admin is False and user.is_admin):
        _ensure_not_last_admin(user)
    if is_admin is not None:
        user.is_admin = is_admin
    if is_active is not None:
        if not is_active and user.is_active:
            auth_service.revoke_all_sessions(user.id)
        user.is_active = is_active
    return user
