"""``/api/v1/events``: long-polling and Server-Sent Events on one per-user cursor."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request, stream_with_context

from app.api.security import auth_required, current_claims, current_user_id
from app.core.errors import FieldError
from app.core.peer import Peer
from app.extensions import Blueprint
from app.schemas.event_schema import EventPageSchema, EventQuerySchema, StreamQuerySchema
from app.services import auth_service, event_service, event_stream_service

blp = Blueprint("events", __name__, url_prefix="/events", description="Real-time events.")


@blp.route("", methods=["GET"])
@auth_required
@blp.arguments(EventQuerySchema(), location="query")
@blp.response(200, EventPageSchema)
@blp.alt_response(410, description="The cursor is older than the retention window: resync.")
@blp.alt_response(401, description="The session ended while the request waited (`token_revoked`).")
@blp.alt_response(
    429, description="Too many event connections for this user (`too_many_connections`)."
)
def poll_events(query: dict[str, Any]) -> Any:
    """Return events after `since`, waiting up to `timeout` seconds for one."""
    since = event_service.parse_cursor(query.get("since"))
    claims = current_claims()
    return event_service.poll(
        current_user_id(),
        since,
        query["timeout"],
        still_valid=lambda: auth_service.check_access(claims),
        session_id=session_of(claims),
    )


def session_of(claims: dict[str, Any]) -> int | None:
    """Return the auth session an access token names (None if it names none)."""
    sid = claims.get("sid")
    return sid if isinstance(sid, int) else None


@blp.route("/stream", methods=["GET"])
@auth_required
@blp.arguments(StreamQuerySchema(), location="query")
@blp.doc(responses={"200": {"description": "`text/event-stream`: one SSE event per Event."}})
@blp.alt_response(
    429, description="Too many event connections for this user (`too_many_connections`)."
)
def stream_events(query: dict[str, Any]) -> Response:
    """Stream events as Server-Sent Events (resumes after `Last-Event-ID`)."""
    user_id = current_user_id()
    claims = current_claims()
    header = request.headers.get("Last-Event-ID")
    try:
        since = event_service.start_stream(user_id, header or query.get("since"))
    except FieldError as error:
        if not header:
            raise
        raise FieldError(error.message, "Last-Event-ID", error.problem) from None
    slot = event_service.open_connection(user_id)
    events = event_stream_service.stream(
        user_id,
        since,
        session_id=session_of(claims),
        keepalive=float(current_app.config["EVENTS_KEEPALIVE_SECONDS"]),
        expires_at=float(claims["exp"]),
        peer=Peer(
            request.environ.get("gunicorn.socket"),
            float(current_app.config["EVENTS_SEND_TIMEOUT_SECONDS"]),
        ),
    )
    response = Response(
        stream_with_context(events),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(slot.release)  # however the stream ends, its slot is given back
    return response
