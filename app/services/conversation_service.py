"""The conversations domain: conversations, who is in them, and how each member sees them.

Authorization lives here: a user who is not a member of a conversation is told it does not
exist (404), on every endpoint, with the same answer as for an id that was never used. Members
are managed in :mod:`app.services.member_service`, read markers in
:mod:`app.services.read_marker_service`, messages in :mod:`app.services.message_service`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy.exc as sa_exc

from app.core.errors import ConflictError, FieldError, ForbiddenError, NotFoundError
from app.core.pagination import decode_cursor, encode_cursor
from app.core.utils import DIRECT, GROUP, MAX_GROUP_MEMBERS, MEMBER, OWNER
from app.crud import conversation_crud, conversation_view_crud
from app.database.base import utcnow
from app.database.connection import transactional
from app.models.conversation_models import Conversation, Member
from app.services import event_service, presence_service, user_service
from app.services.event_service import Event


def not_found() -> NotFoundError:
    """Return the 404 for a conversation that does not exist or that the caller is not in."""
    return NotFoundError("No such conversation.")


def require_membership(conversation_id: int, user_id: int) -> tuple[Conversation, Member]:
    """Return the conversation and the caller's membership, or raise NotFoundError."""
    found = conversation_crud.get_membership_with_conversation(conversation_id, user_id)
    if found is None:
        raise not_found()
    return found


def check_membership(conversation_id: int, user_id: int) -> None:
    """Raise NotFoundError unless the user is a member (one indexed lookup, nothing loaded)."""
    if not conversation_crud.is_member(conversation_id, user_id):
        raise not_found()


def member_presence(conversation_id: int, viewer_id: int) -> dict[str, Any]:
    """Return the presence of each member (NotFoundError unless the viewer is one)."""
    check_membership(conversation_id, viewer_id)
    members = conversation_crud.member_ids(conversation_id)
    return {"items": presence_service.presence_of(viewer_id, members)}


def lock_for_member(conversation_id: int, user_id: int) -> tuple[Conversation, Member]:
    """Lock the conversation row for a write by one of its members (NotFoundError otherwise)."""
    found = conversation_crud.lock_membership(conversation_id, user_id)
    if found is None:
        raise not_found()
    return found


def take_next_seq(conversation_id: int, user_id: int, now: datetime) -> int:
    """Lock the conversation for a member's send; return the ``seq`` the message takes.

    Also records ``now`` as the conversation's last activity. NotFoundError when the
    conversation does not exist or the user is not a member.
    """
    seq = conversation_crud.take_next_seq(conversation_id, user_id, now)
    if seq is None:
        raise not_found()
    return seq


def touch_members(
    conversation_id: int, moment: datetime, reader: tuple[int, int] | None = None
) -> None:
    """Record new activity on every membership of a conversation (the caller holds its lock).

    ``reader``, ``(user_id, seq)``: that member has also read up to ``seq``.
    """
    conversation_crud.touch_members(conversation_id, moment, reader)


def check_users(user_ids: Sequence[int], field: str) -> None:
    """Raise FieldError on ``field`` unless every id is an existing, active user."""
    unknown = sorted(set(user_ids) - user_service.active_user_ids(user_ids))
    if unknown:
        raise FieldError(
            "Some users do not exist or are deactivated.",
            field,
            f"Unknown or deactivated user ids: {unknown}.",
        )


def check_group_size(count: int, field: str) -> None:
    """Raise FieldError on ``field`` when a group would have more than the most members."""
    if count > MAX_GROUP_MEMBERS:
        raise FieldError(
            f"A group has at most {MAX_GROUP_MEMBERS} members.",
            field,
            f"At most {MAX_GROUP_MEMBERS} members, the creator included.",
        )


def view(conversation_id: int, user_id: int) -> dict[str, Any]:
    """Return the Conversation resource as the user sees it (NotFoundError for non-members)."""
    found = conversation_view_crud.get_view(conversation_id, user_id)
    if found is None:
        raise not_found()
    return found


def conversation_event(type: str, conversation: Conversation) -> Event:
    """Build the event of a conversation change: each member's own view is their data."""
    views = conversation_view_crud.get_member_views(conversation.id)
    return Event.per_recipient(type, conversation.id, views)


@transactional
def start_direct(user_id: int, other_id: int) -> tuple[dict[str, Any], bool]:
    """Return the pair's direct conversation, creating it if needed; True when created.

    The pair key is unique in the database, so two racing requests end with one conversation.
    """
    check_users([other_id], "member_ids")
    low, high = sorted((user_id, other_id))
    key = f"{low}:{high}"
    existing = conversation_crud.get_direct_conversation(key)
    created = False
    if existing is None:
        try:
            with conversation_crud.savepoint():
                existing = _create(DIRECT, None, user_id, [low, high], direct_key=key)
            created = True
        except sa_exc.IntegrityError:  # the other request created it first
            existing = conversation_crud.get_direct_conversation(key)
            if existing is None:  # pragma: no cover - the unique key guarantees a winner
                raise
    return view(existing.id, user_id), created


@transactional
def create_group(user_id: int, title: str, member_ids: Sequence[int]) -> dict[str, Any]:
    """Create a group conversation; the creator is its owner."""
    others = sorted(set(member_ids) - {user_id})
    check_group_size(len(others) + 1, "member_ids")
    check_users(others, "member_ids")
    conversation = _create(GROUP, title, user_id, [user_id, *others])
    return view(conversation.id, user_id)


def _create(
    kind: str, title: str | None, creator_id: int, user_ids: Sequence[int], direct_key: str = ""
) -> Conversation:
    now = utcnow()
    conversation = conversation_crud.add_conversation(
        Conversation(
            kind=kind,
            title=title,
            direct_key=direct_key or None,
            created_by=creator_id,
            created_at=now,
            last_activity_at=now,
        )
    )
    conversation_crud.add_members(
        Member(
            conversation_id=conversation.id,
            user_id=uid,
            role=OWNER if kind == GROUP and uid == creator_id else MEMBER,
            joined_at=now,
            last_activity_at=now,
        )
        for uid in sorted(set(user_ids))
    )
    event_service.emit([conversation_event("conversation.created", conversation)])
    return conversation


def find_group(user_id: int, title: str) -> dict[str, Any] | None:
    """Return the oldest group of the user with this exact title, if any."""
    found = conversation_crud.find_group_by_title(user_id, title)
    return view(found, user_id) if found is not None else None


def get_conversation(conversation_id: int, user_id: int) -> dict[str, Any]:
    """Return one of the caller's conversations (one statement)."""
    return view(conversation_id, user_id)


@transactional
def update_title(conversation_id: int, user_id: int, title: str) -> dict[str, Any]:
    """Rename a group (owners only)."""
    conversation, member = lock_for_member(conversation_id, user_id)
    if conversation.kind != GROUP:
        raise ConflictError("Only group conversations have a title.")
    if member.role != OWNER:
        raise ForbiddenError("Only an owner can rename the conversation.")
    conversation.title = title
    conversation_crud.flush()
    event = conversation_event("conversation.updated", conversation)
    event_service.emit([event])
    return dict(event.data_for(user_id))


def list_conversations(
    user_id: int, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Return the caller's conversations, most recent activity first, with keyset cursors.

    The first page fixes a snapshot time carried in the cursor; later pages order
    conversations by their activity as of that time, so messages arriving while a client pages
    neither repeat nor hide a conversation that existed when paging began.
    """
    if cursor:
        as_of_text, activity_text, last_id = decode_cursor(cursor, 3)
        as_of = datetime.fromisoformat(as_of_text)
        after: tuple[datetime, int] | None = (datetime.fromisoformat(activity_text), int(last_id))
    else:
        as_of, after = utcnow(), None
    rows = conversation_view_crud.list_user_conversations(user_id, as_of, after, limit + 1)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        resource, activity = page[-1]
        position = [as_of.isoformat(), _as_utc(activity).isoformat(), resource["id"]]
        next_cursor = encode_cursor(position)
    return [resource for resource, _ in page], next_cursor


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
