"""SQLAlchemy models of every domain (imported here so Alembic sees all tables)."""

from app.models.auth_models import AuthSession, PasswordReset, RefreshToken
from app.models.conversation_models import Conversation, Member, Message
from app.models.event_models import EventCounter, UserEvent
from app.models.user_models import User

__all__ = [
    "AuthSession",
    "Conversation",
    "EventCounter",
    "Member",
    "Message",
    "PasswordReset",
    "RefreshToken",
    "User",
    "UserEvent",
]
