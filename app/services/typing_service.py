"""Typing indicators: ephemeral events to the other members' open streams, never logged.

``POST /conversations/{id}/typing`` tells the other members' open event streams
``typing {conversation_id, user_id, expires_in}``: show the indicator for ``expires_in``
seconds unless it is repeated. At most one broadcast per user and conversation every
:data:`TYPING_EVERY` seconds, in every process when Redis is there; extra calls succeed and send
nothing. Only members may signal, and only members are told, as the membership stands at the
call.
"""

from __future__ import annotations

from flask import current_app

from app.core.throttle import get_throttle
from app.crud import conversation_crud
from app.database.connection import end_read
from app.services import conversation_service, event_service

#: Seconds a client shows a typing indicator unless it is repeated.
TYPING_EXPIRES_IN = 6
#: Seconds between two broadcasts for one user and conversation.
TYPING_EVERY = 2.0


def signal_typing(conversation_id: int, user_id: int) -> None:
    """Tell the other members' open streams that the user is typing (NotFoundError if not one)."""
    conversation_service.check_membership(conversation_id, user_id)
    config = current_app.config
    throttle = get_throttle(config["REDIS_URL"], config["REDIS_PREFIX"])
    if not throttle.first(f"typing:{conversation_id}:{user_id}", TYPING_EVERY):
        end_read()
        return
    others = [uid for uid in conversation_crud.member_ids(conversation_id) if uid != user_id]
    end_read()
    data = {"conversation_id": conversation_id, "user_id": user_id, "expires_in": TYPING_EXPIRES_IN}
    event_service.waker().publish_ephemeral(others, "typing", data)
