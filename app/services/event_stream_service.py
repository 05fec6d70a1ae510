"""``GET /events/stream``: the user's events as Server-Sent Events, typing and presence between.

A stream reads its user's log like a long-poll, and writes each batch as SSE events with their
cursor as ``id``; it sleeps on its listener between batches, woken by commits, by ephemeral events
(typing, presence: written without ``id``, never logged), by its client hanging up, or by the
process stopping. It ends when the token expires, the session ends, the process stops, or its
client goes away or stops reading; the client reconnects with ``Last-Event-ID``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from app.core.connection_slots import Slot
from app.core.peer import Listener, Peer
from app.core.wakeup import Waker, shutting_down
from app.crud import event_crud
from app.database.connection import end_read
from app.services import event_service, presence_service
from app.services.event_service import jsonable


def stream(
    user_id: int,
    since: int,
    still_valid: Callable[[], bool],
    keepalive: float,
    expires_at: float,
    slot: Slot,
    peer: Peer,
) -> Iterator[str]:
    """Yield Server-Sent Events after ``since`` until the token expires or its session ends.

    Ephemeral events arrive between the logged ones, without ``id:``. The stream also ends
    when its client goes away or stops reading (``peer``). ``slot`` (from
    :func:`event_service.open_connection`) is renewed while the stream lasts; the caller
    releases it when the response closes.
    """
    hub = event_service.waker()
    listener = hub.attach(user_id, ephemeral=True)
    try:
        peer.watch(listener)
        presence_service.connected(user_id)
        try:
            yield "retry: 2000\n\n"
            yield from _stream_until(
                hub, listener, since, still_valid, keepalive, expires_at, slot, peer
            )
        finally:
            presence_service.disconnected(user_id)
    finally:
        peer.close()
        hub.detach(listener)


def _sse(type: str, data: Mapping[str, Any], id: str | None = None) -> str:
    """One SSE event; logged events carry their cursor as ``id``, ephemeral ones none."""
    body = json.dumps(jsonable(data), separators=(",", ":"))
    line = f"id: {id}\n" if id is not None else ""
    return f"{line}event: {type}\ndata: {body}\n\n"


def _stream_until(
    hub: Waker,
    listener: Listener,
    since: int,
    still_valid: Callable[[], bool],
    keepalive: float,
    expires_at: float,
    slot: Slot,
    peer: Peer,
) -> Iterator[str]:
    user_id = listener.user_id
    last_sent = time.monotonic()
    while True:
        slot.renew()
        now = time.monotonic()
        listener.hung_up = False
        if (
            time.time() >= expires_at
            or shutting_down()
            or peer.gone()
            or peer.backlogged()
            or not still_valid()
        ):
            # Stopping, a client gone or not reading: the client reconnects with Last-Event-ID.
            end_read()
            return
        for type, data in listener.take_ephemeral():
            yield _sse(type, data)
            last_sent = time.monotonic()
        version = hub.version(user_id)
        events, scanned = event_crud.events_after(user_id, since, event_service.BATCH)
        views = [event_service.event_view(e) for e in events]
        end_read()
        more = scanned > since  # a batch of hidden events: read on at once
        since = scanned
        for view in views:
            if peer.backlogged():  # a slow consumer: end rather than buffer
                return
            yield _sse(view["type"], view, id=view["cursor"])
            last_sent = time.monotonic()
        if more:
            continue
        if now - last_sent >= keepalive:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        wait_for = min(keepalive - (time.monotonic() - last_sent), expires_at - time.time())
        hub.wait(listener, version, max(wait_for, 0.05), position=since)
