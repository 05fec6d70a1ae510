"""The conversations domain: conversations, membership and read markers.

Authorization lives here: a user who is not a member of a conversation is told it does not
exist (404), on every endpoint, with the same answer as for an id that was never used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy.exc as sa_exc
from flask import current_app

from app.core.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from app.core.pagination import decode_cursor, encode_cursor
from app.core.utils import MAX_GROUP_MEMBERS
from app.crud import conversation_crud, message_crud
from app.database.base import utcnow
from app.database.connection import transactional
from app.models.conversation_models import Conversation, Member, Message
from app.services import event_service, user_service


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


def _check_users(user_ids: Sequence[int], field: str = "member_ids") -> None:
    unknown = sorted(set(user_ids) - user_service.active_user_ids(user_ids))
    if unknown:
        raise ValidationFailedError(
            "Some users do not exist or are deactivated.",
            errors={"json": {field: [f"Unknown or deactivated user ids: {unknown}."]}},
        )


def _view(conversation: Conversation, member: Member) -> dict[str, Any]:
    """One conversation as the caller sees it (three queries; lists use the batched form)."""
    return _views([(conversation, member)], member.user_id)[0]


def _resource(
    c: Conversation, m: Member, last: Message | None, unread: int, member_count: int
) -> dict[str, Any]:
    """Return the Conversation resource as member ``m`` sees it."""
    return {
        "id": c.id,
        "kind": c.kind,
        "title": c.title,
        "created_at": c.created_at,
        "created_by": c.created_by,
        "last_seq": c.last_seq,
        "last_message": message_data(last) if last else None,
        "last_activity_at": c.last_activity_at,
        "my_role": m.role,
        "my_last_read_seq": m.last_read_seq,
        "unread_count": unread,
        "member_count": member_count,
    }


def _views(pairs: Sequence[tuple[Conversation, Member]], user_id: int) -> list[dict[str, Any]]:
    ids = [conversation.id for conversation, _ in pairs]
    last = conversation_crud.last_messages(ids)
    unread = conversation_crud.unread_counts(user_id, ids)
    members = conversation_crud.member_counts(ids)
    return [
        _resource(c, m, last.get(c.id), unread.get(c.id, 0), members.get(c.id, 0)) for c, m in pairs
    ]


def _member_views_of(conversation: Conversation) -> dict[int, dict[str, Any]]:
    """Every member's view of a conversation, for per-recipient events (four queries)."""
    members = conversation_crud.list_members(conversation.id)
    last = conversation_crud.last_messages([conversation.id]).get(conversation.id)
    unread = conversation_crud.unread_counts_of_members(conversation.id)
    return {
        m.user_id: _resource(conversation, m, last, unread.get(m.user_id, 0), len(members))
        for m in members
    }


def message_data(message: Message) -> dict[str, Any]:
    """Return a message as events carry it (the Message resource)."""
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "body": message.body,
        "client_id": message.client_id,
        "created_at": message.created_at,
        "edited_at": message.edited_at,
        "deleted": message.deleted,
    }


def emit_conversation(kind: str, conversation: Conversation) -> tuple[list[int], str, int, Any]:
    """Build the event of a conversation change, each member's own view as its data."""
    views = _member_views_of(conversation)
    return (list(views), kind, conversation.id, views.__getitem__)


@transactional
def start_direct(user_id: int, other_id: int) -> tuple[dict[str, Any], bool]:
    """Return the pair's direct conversation, creating it if needed; True when created.

    The pair key is unique in the database, so two racing requests end with one conversation.
    """
    _check_users([other_id])
    low, high = sorted((user_id, other_id))
    key = f"{low}:{high}"
    existing = conversation_crud.get_direct_conversation(key)
    if existing is None:
        try:
            with conversation_crud.savepoint():
                now = utcnow()
                existing = conversation_crud.add_conversation(
                    Conversation(
                        kind="direct",
                        direct_key=key,
                        created_by=user_id,
                        created_at=now,
                        last_activity_at=now,
                    )
                )
                conversation_crud.add_members(
                    Member(
                        conversation_id=existing.id,
                        user_id=uid,
                        role="member",
                        joined_at=now,
                        last_activity_at=now,
                    )
                    for uid in sorted({low, high})
                )
                event_service.emit([emit_conversation("conversation.created", existing)])
            created = True
        except sa_exc.IntegrityError:  # the other request created it first
            existing = conversation_crud.get_direct_conversation(key)
            created = False
            if existing is None:  # pragma: no cover - the unique key guarantees a winner
                raise
    else:
        created = False
    conversation, member = require_membership(existing.id, user_id)
    return _view(conversation, member), created


@transactional
def create_group(user_id: int, title: str, member_ids: Sequence[int]) -> dict[str, Any]:
    """Create a group conversation; the creator is its owner."""
    others = sorted(set(member_ids) - {user_id})
    if len(others) + 1 > MAX_GROUP_MEMBERS:
        raise ValidationFailedError(
            f"A group has at most {MAX_GROUP_MEMBERS} members.",
            errors={
                "json": {"member_ids": [f"At most {MAX_GROUP_MEMBERS} members, creator included."]}
            },
        )
    _check_users(others)
    now = utcnow()
    conversation = conversation_crud.add_conversation(
        Conversation(
            kind="group", title=title, created_by=user_id, created_at=now, last_activity_at=now
        )
    )
    conversation_crud.add_members(
        Member(
            conversation_id=conversation.id,
            user_id=uid,
            role="owner" if uid == user_id else "member",
            joined_at=now,
            last_activity_at=now,
        )
        for uid in [user_id, *others]
    )
    event_service.emit([emit_conversation("conversation.created", conversation)])
    return _view(*require_membership(conversation.id, user_id))


def find_group(user_id: int, title: str) -> dict[str, Any] | None:
    """Return the oldest group of the user with this exact title, if any."""
    found = conversation_crud.find_group_by_title(user_id, title)
    return _view(*found) if found else None


def get_conversation(conversation_id: int, user_id: int) -> dict[str, Any]:
    """Return one of the caller's conversations."""
    return _view(*require_membership(conversation_id, user_id))


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


def list_conversations(
    user_id: int, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Return the caller's conversations, most recent activity first, with keyset cursors.

    The first page fixes a snapshot time carried in the cursor; later pages order
    conversations by their activity as of that time, so messages arriving while a client pages
    neither repeat nor hide a conversation that existed when paging began.
    """
    if cursor:
        as_of_text, activity_text, last_id = decode_cursor(cursor, _secret(), 3)
        as_of = datetime.fromisoformat(as_of_text)
        after: tuple[datetime, int] | None = (datetime.fromisoformat(activity_text), int(last_id))
    else:
        as_of, after = utcnow(), None
    rows = conversation_crud.list_user_conversations(user_id, as_of, after, limit + 1)
    page = rows[:limit]
    items = [_resource_of_row(row) for row in page]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(
            [as_of.isoformat(), _as_utc(last["activity"]).isoformat(), last["id"]], _secret()
        )
    return items, next_cursor


def _resource_of_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Build the Conversation resource from a ``list_user_conversations`` row."""
    last = None
    if row["last_id"] is not None:
        last = {
            "id": row["last_id"],
            "conversation_id": row["id"],
            "seq": row["last_seq"],
            "sender_id": row["last_sender_id"],
            "body": row["last_body"],
            "client_id": row["last_client_id"],
            "created_at": row["last_created_at"],
            "edited_at": row["last_edited_at"],
            "deleted": row["last_deleted_at"] is not None,
        }
    return {
        "id": row["id"],
        "kind": row["kind"],
        "title": row["title"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "last_seq": row["last_seq"],
        "last_message": last,
        "last_activity_at": row["last_activity_at"],
        "my_role": row["my_role"],
        "my_last_read_seq": row["my_last_read_seq"],
        "unread_count": row["unread_count"],
        "member_count": row["member_count"],
    }


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@transactional
def update_title(conversation_id: int, user_id: int, title: str) -> dict[str, Any]:
    """Rename a group (owners only)."""
    conversation, member = lock_for_member(conversation_id, user_id)
    if conversation.kind != "group":
        raise ConflictError("Only group conversations have a title.")
    if member.role != "owner":
        raise ForbiddenError("Only an owner can rename the conversation.")
    conversation.title = title
    event_service.emit([emit_conversation("conversation.updated", conversation)])
    return _view(conversation, member)


def touch_members(
    conversation_id: int, moment: datetime, reader: tuple[int, int] | None = None
) -> None:
    """Record new activity on every membership of a conversation (the caller holds its lock).

    ``reader``, ``(user_id, seq)``: that member has also read up to ``seq``.
    """
    conversation_crud.touch_members(conversation_id, moment, reader)


def list_members(conversation_id: int, user_id: int) -> list[dict[str, Any]]:
    """Return the members of one of the caller's conversations."""
    require_membership(conversation_id, user_id)
    return _member_views(conversation_crud.list_members(conversation_id))


def _member_views(members: Sequence[Member]) -> list[dict[str, Any]]:
    profiles = user_service.public_profiles([m.user_id for m in members])
    return [
        {
            "user": profiles[m.user_id],
            "role": m.role,
            "joined_at": m.joined_at,
            "last_read_seq": m.last_read_seq,
        }
        for m in members
    ]


@transactional
def add_members(
    conversation_id: int, user_id: int, user_ids: Sequence[int]
) -> list[dict[str, Any]]:
    """Add users to a group (owners only); present members are left as they are."""
    conversation, member = lock_for_member(conversation_id, user_id)
    if conversation.kind != "group":
        raise ConflictError("Members can only be added to group conversations.")
    if member.role != "owner":
        raise ForbiddenError("Only an owner can add members.")
    present = {m.user_id for m in conversation_crud.list_members(conversation_id)}
    new_ids = sorted(set(user_ids) - present)
    _check_users(new_ids, field="user_ids")
    if len(present) + len(new_ids) > MAX_GROUP_MEMBERS:
        raise ValidationFailedError(
            f"A group has at most {MAX_GROUP_MEMBERS} members.",
            errors={"json": {"user_ids": [f"At most {MAX_GROUP_MEMBERS} members in all."]}},
        )
    now = utcnow()
    # Joiners start with everything so far read: history is visible, not unread.
    conversation_crud.add_members(
        Member(
            conversation_id=conversation_id,
            user_id=uid,
            role="member",
            joined_at=now,
            last_read_seq=conversation.last_seq,
            last_activity_at=conversation.last_activity_at,
        )
        for uid in new_ids
    )
    members = _member_views(conversation_crud.list_members(conversation_id))
    if new_ids:
        everyone = [m["user"]["id"] for m in members]
        event_service.emit(
            [
                (everyone, "member.added", conversation_id, m)
                for m in members
                if m["user"]["id"] in new_ids
            ]
            + [emit_conversation("conversation.updated", conversation)]
        )
    return members


@transactional
def remove_member(conversation_id: int, user_id: int, target_id: int) -> None:
    """Remove a member (owners), or leave (anyone); the last owner's role passes on.

    Ownership goes to the longest-standing remaining member.
    """
    conversation, member = lock_for_member(conversation_id, user_id)
    if target_id != user_id and member.role != "owner":
        raise ForbiddenError("Only an owner can remove other members.")
    if conversation.kind != "group":
        raise ConflictError("Direct conversations keep their members.")
    target = (
        member if target_id == user_id else conversation_crud.get_member(conversation_id, target_id)
    )
    if target is None:
        raise NotFoundError("No such member.")
    removed = _member_views([target])[0]
    conversation_crud.delete_member(target)
    remaining = conversation_crud.list_members(conversation_id)
    heir = None
    if remaining and not any(m.role == "owner" for m in remaining):
        heir = remaining[0]
        heir.role = "owner"
    stayers = [m.user_id for m in remaining]
    events = [(stayers + [target_id], "member.removed", conversation_id, removed)]
    if heir is not None:  # a role change is announced as the member after the change
        events.append((stayers, "member.added", conversation_id, _member_views([heir])[0]))
    if remaining:
        events.append(emit_conversation("conversation.updated", conversation))
    event_service.emit(events)


@transactional
def mark_read(conversation_id: int, user_id: int, seq: int) -> dict[str, int]:
    """Move the caller's read marker forward to ``seq`` (clamped to the newest message)."""
    conversation, member = require_membership(conversation_id, user_id)
    target = min(seq, conversation.last_seq)
    moved = target > member.last_read_seq
    if moved:
        conversation_crud.advance_read_marker(conversation_id, user_id, target)
    # Read back: a concurrent request may have moved the marker further still.
    marker = conversation_crud.read_marker(conversation_id, user_id)
    if moved:
        _emit_read(conversation_id, user_id, marker)
    return _read_state(conversation_id, user_id, marker)


@transactional
def mark_unread(conversation_id: int, user_id: int, seq: int) -> dict[str, int]:
    """Set the caller's read marker to ``seq - 1``: unread from that message on."""
    conversation, _ = require_membership(conversation_id, user_id)
    marker = min(seq - 1, conversation.last_seq)
    conversation_crud.set_read_marker(conversation_id, user_id, marker)
    _emit_read(conversation_id, user_id, marker)
    return _read_state(conversation_id, user_id, marker)


def _emit_read(conversation_id: int, user_id: int, marker: int) -> None:
    event_service.emit(
        [
            (
                conversation_crud.member_ids(conversation_id),
                "read.updated",
                conversation_id,
                {"user_id": user_id, "last_read_seq": marker},
            )
        ]
    )


def _read_state(conversation_id: int, user_id: int, marker: int) -> dict[str, int]:
    return {
        "last_read_seq": marker,
        "unread_count": message_crud.count_unread(conversation_id, user_id, marker),
    }
