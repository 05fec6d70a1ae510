"""Members of conversations: who is in a group, joining, leaving and ownership."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.core.errors import ConflictError, ForbiddenError, NotFoundError
from app.core.utils import GROUP, MEMBER, OWNER
from app.crud import conversation_crud
from app.database.connection import transactional
from app.models.conversation_models import Member
from app.services import conversation_service, event_service, user_service
from app.services.event_service import Event


def list_members(conversation_id: int, user_id: int) -> list[dict[str, Any]]:
    """Return the members of one of the caller's conversations, longest-standing first."""
    conversation_service.require_membership(conversation_id, user_id)
    return _member_resources(conversation_crud.list_members(conversation_id))


def _member_resources(members: Sequence[Member]) -> list[dict[str, Any]]:
    """Return the Member resources of these memberships."""
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


def _member_event(
    type: str, conversation_id: int, recipients: Sequence[int], member: Member
) -> Event:
    resource = _member_resources([member])[0]
    return Event(type, conversation_id, recipients, data=resource, subject_id=member.user_id)


@transactional
def add_members(
    conversation_id: int, user_id: int, user_ids: Sequence[int]
) -> list[dict[str, Any]]:
    """Add users to a group (owners only); present members are left as they are."""
    conversation, member = conversation_service.lock_for_member(conversation_id, user_id)
    if conversation.kind != GROUP:
        raise ConflictError("Members can only be added to group conversations.")
    if member.role != OWNER:
        raise ForbiddenError("Only an owner can add members.")
    present = {m.user_id for m in conversation_crud.list_members(conversation_id)}
    new_ids = sorted(set(user_ids) - present)
    conversation_service.check_users(new_ids, "user_ids")
    conversation_service.check_group_size(len(present) + len(new_ids), "user_ids")
    # Joiners start with everything so far read: history is visible, not unread.
    conversation_crud.add_members(
        Member(
            conversation_id=conversation_id,
            user_id=uid,
            role=MEMBER,
            last_read_seq=conversation.last_seq,
            last_activity_at=conversation.last_activity_at,
        )
        for uid in new_ids
    )
    members = conversation_crud.list_members(conversation_id)
    resources = _member_resources(members)
    if new_ids:
        joined = set(new_ids)
        series = [
            (m.user_id, resource)
            for m, resource in zip(members, resources, strict=True)
            if m.user_id in joined
        ]
        event_service.emit_to_all_members("member.added", conversation_id, series)
        updated = conversation_service.conversation_event("conversation.updated", conversation)
        event_service.emit([updated])
    return resources


@transactional
def remove_member(conversation_id: int, user_id: int, target_id: int) -> None:
    """Remove a member (owners), or leave (anyone); the last owner's role passes on.

    Ownership goes to the longest-standing remaining member.
    """
    conversation, member = conversation_service.lock_for_member(conversation_id, user_id)
    if target_id != user_id and member.role != OWNER:
        raise ForbiddenError("Only an owner can remove other members.")
    if conversation.kind != GROUP:
        raise ConflictError("Direct conversations keep their members.")
    target = (
        member if target_id == user_id else conversation_crud.get_member(conversation_id, target_id)
    )
    if target is None:
        raise NotFoundError("No such member.")
    removed = _member_resources([target])[0]
    conversation_crud.delete_member(target)
    remaining = conversation_crud.list_members(conversation_id)
    heir = None
    if remaining and not any(m.role == OWNER for m in remaining):
        heir = remaining[0]
        heir.role = OWNER
        conversation_crud.flush()
    stayers = [m.user_id for m in remaining]
    leaving = [*stayers, target_id]  # the one who left is told too
    events = [Event("member.removed", conversation_id, leaving, removed, subject_id=target_id)]
    if heir is not None:  # a role change is announced as the member after the change
        events.append(_member_event("member.added", conversation_id, stayers, heir))
    if remaining:
        events.append(conversation_service.conversation_event("conversation.updated", conversation))
    event_service.emit(events)
