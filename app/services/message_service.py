"""Messages: gap-free ``seq`` per conversation, idempotent sends, edits and tombstones.

A send's first statement locks its conversation's row and takes ``last_seq + 1``: sends to one
conversation are serialised by that lock, so their ``seq`` values follow the order in which the
server accepted them, with no gap (a failed send rolls its bump back) and no repeat
(``(conversation_id, seq)`` is unique). A retry with the same ``client_id`` is stopped by the
unique ``(conversation, sender, client_id)`` constraint: its transaction rolls back, and the
first message is returned instead. Retries are rare, so new sends do not pay for a lookup.
The message's INSERT reads the sender's membership again, under the lock: a sender removed while
the send waited for it is answered 404, and nothing is stored.

Within a worker, sends to one conversation first queue for their turn (:mod:`app.core.locks`), so
that at most one of them per worker waits for the row lock in the database.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc as sa_exc

from app.core.errors import ConflictError, ForbiddenError, NotFoundError
from app.core.locks import LocalQueue
from app.core.utils import GROUP, OWNER
from app.crud import message_crud
from app.crud.conversation_sql import message_resource
from app.database.base import utcnow
from app.database.connection import end_read, transactional
from app.models.conversation_models import Message
from app.services import conversation_service, event_service

#: Sends of this worker, queued per conversation in front of its row lock.
send_queue = LocalQueue()


def _same_send(message: Message, body: str) -> Message:
    """Return the stored message for a retry of its send; a different body is a conflict.

    Once the message was edited or deleted its original body is gone, and a retry cannot be
    told from a reuse: the retry then gets the message as it now stands, edit or tombstone.
    """
    if message.deleted or message.edited_at is not None or message.body == body:
        return message
    raise ConflictError("This client_id was already used for a different message.")


def send_message(
    conversation_id: int, sender_id: int, body: str, client_id: str | None
) -> tuple[dict[str, Any], bool]:
    """Store a message, or return the one first stored under ``client_id``; True when new.

    Sending moves the sender's own read marker to the new message. The message comes back as
    the Message resource's fields, taken inside the transaction (nothing to reload after it).
    """
    end_read()  # no pooled connection held while queueing
    try:
        with send_queue.turn(conversation_id):
            return _send(conversation_id, sender_id, body, client_id)
    except sa_exc.IntegrityError:
        if client_id is None:  # pragma: no cover - seq is assigned under the row lock
            raise
        # The client_id was used before (or a concurrent retry won): answer with that message.
        return _replay(conversation_id, sender_id, body, client_id), False


@transactional
def _send(
    conversation_id: int, sender_id: int, body: str, client_id: str | None
) -> tuple[dict[str, Any], bool]:
    # The row lock is held from here to COMMIT: five statements (two of them the fan-out).
    now = utcnow()
    seq = conversation_service.take_next_seq(conversation_id, sender_id, now)
    message = message_crud.insert_member_message(
        Message(
            conversation_id=conversation_id,
            seq=seq,
            sender_id=sender_id,
            body=body,
            client_id=client_id,
            created_at=now,
        )
    )
    if message is None:  # removed while this send waited for the lock: nothing is stored
        raise conversation_service.not_found()
    # Everyone's activity time, and the sender's read marker: they have read their own message.
    conversation_service.touch_members(conversation_id, now, (sender_id, seq))
    data = _emit("message.created", message)
    return data, True


def _emit(type: str, message: Message) -> dict[str, Any]:
    """Tell every member; return the Message resource."""
    # Members cannot change meanwhile: every caller holds the conversation's row lock.
    data = message_resource(message)
    event_service.emit_to_all_members(type, message.conversation_id, [(None, data)])
    return data


@transactional
def _replay(conversation_id: int, sender_id: int, body: str, client_id: str) -> dict[str, Any]:
    conversation_service.require_membership(conversation_id, sender_id)
    existing = message_crud.get_by_client_id(conversation_id, sender_id, client_id)
    if existing is None:  # pragma: no cover - the constraint that fired names this row
        raise ConflictError("The message could not be stored; try again.")
    return message_resource(_same_send(existing, body))


def list_messages(
    conversation_id: int, user_id: int, before: int | None, after: int | None, limit: int
) -> dict[str, Any]:
    """Return a page of history in ascending ``seq`` (see ``message_crud.list_messages``)."""
    items, has_more = message_crud.list_messages(conversation_id, user_id, before, after, limit)
    if not items:  # an empty page: of a member, or is the caller no member at all?
        conversation_service.check_membership(conversation_id, user_id)
    return {"items": items, "has_more": has_more}


def get_message(conversation_id: int, user_id: int, seq: int) -> Message:
    """One message of one of the caller's conversations."""
    conversation_service.require_membership(conversation_id, user_id)
    message = message_crud.get_message(conversation_id, seq)
    if message is None:
        raise NotFoundError("No such message.")
    return message


@transactional
def edit_message(conversation_id: int, user_id: int, seq: int, body: str) -> Message:
    """Change a message's body (its sender only); a deleted message cannot be edited."""
    conversation_service.lock_for_member(conversation_id, user_id)
    message = message_crud.get_message(conversation_id, seq)
    if message is None:
        raise NotFoundError("No such message.")
    if message.sender_id != user_id:
        raise ForbiddenError("Only the sender can edit a message.")
    if message.deleted:
        raise ConflictError("A deleted message cannot be edited.")
    message.body = body
    message.edited_at = utcnow()
    _emit("message.updated", message)
    return message


@transactional
def delete_message(conversation_id: int, user_id: int, seq: int) -> None:
    """Delete a message (its sender, or a group owner), leaving a tombstone with its ``seq``."""
    conversation, member = conversation_service.lock_for_member(conversation_id, user_id)
    message = message_crud.get_message(conversation_id, seq)
    if message is None:
        raise NotFoundError("No such message.")
    is_group_owner = conversation.kind == GROUP and member.role == OWNER
    if message.sender_id != user_id and not is_group_owner:
        raise ForbiddenError("Only the sender or a group owner can delete a message.")
    if not message.deleted:
        message.body = None
        message.deleted_at = utcnow()
        _emit("message.deleted", message)
