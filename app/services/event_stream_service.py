"""``GET /events/stream``: the user's events as Server-Sent Events, typing and presence between.

A stream reads its user's log like a long-poll, and writes each batch as SSE events with their
cursor as ``id``; it sleeps on its listener between batches, woken by commits, by ephemeral events
(typing, presence: written without ``id``, never logged), by its client hanging up, or by the
process stopping. It ends when the token expires, the session ends, the process stops, or its
client goes away or stops reading; the client reconnects with ``Last-Event-ID``.

An idle stream costs the database nothing: the log and the session are read again only after a
wake-up (a commit for the user, a revocation, the poller or the presence sweep), never for a
keep-alive. What a commit's wake-up reached is read for all those streams at once before they
wake (:mod:`app.core.read_ahead`), so each wakes once, to write; a stream woken by something
else asks together with the others woken with it (a :class:`~app.core.batching.Batcher` per
app). Either way a message into a 1,000-member group costs each process one session
statement and one log statement, not two per open stream.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from flask import current_app

from app.core.batching import batcher_in
from app.core.peer import Listener, Peer
from app.core.read_ahead import ReadAhead
from app.core.wakeup import shutting_down
from app.crud import event_crud
from app.database.connection import end_read, release_session
from app.services import event_service, presence_service
from app.services.event_service import jsonable


def stream(
    user_id: int,
    since: int,
    session_id: int | None,
    keepalive: float,
    expires_at: float,
    peer: Peer,
) -> Iterator[str]:
    """Yield Server-Sent Events after ``since`` until the token expires or its session ends.

    Ephemeral events arrive between the logged ones, without ``id:``. The stream also ends
    when its client goes away or stops reading (``peer``). The caller holds the stream's
    connection slot (:func:`event_service.open_connection`) and releases it when the response
    closes. ``session_id``: the token's session, checked after each wake-up (and by the
    presence sweep of the process).
    """
    hub = event_service.waker()
    listener = hub.attach(user_id, ephemeral=True)
    listener.session_id = session_id
    listener.read_ahead = _read_ahead()
    try:
        peer.watch(listener)
        presence_service.connected(user_id, session_id)
        try:
            yield "retry: 2000\n\n"
            last_sent = time.monotonic()
            read_version: int | None = None  # the wake-up version the last read saw
            while True:
                listener.hung_up = False  # checked just below: peer.gone()
                version = hub.version(user_id)
                fresh = version != read_version  # woken: the log or the session may have moved
                if time.time() >= expires_at or shutting_down() or peer.gone() or peer.backlogged():
                    # Stopping, a client gone or not reading: it reconnects with Last-Event-ID.
                    end_read()
                    return
                if fresh:
                    if read_version is None:  # the first read, or reading on: on its own
                        live = True  # checked by the request itself, or at the last wake-up
                        events, scanned = event_crud.events_after(
                            user_id, since, event_service.BATCH
                        )
                        frames = _frames(events)
                    else:  # woken: read ahead, or together with the streams it reached
                        ahead = listener.take_answer(since, version)
                        live, frames, scanned = ahead or _read_woken(user_id, since, session_id)
                    end_read()
                    if not live:  # its session ended: the client signs in again
                        return
                for type, data in listener.take_ephemeral():
                    yield _sse(type, data)
                    last_sent = time.monotonic()
                if fresh:
                    more = scanned - since >= event_service.BATCH  # a full batch: read on now
                    since = scanned
                    for frame in frames:
                        if peer.backlogged():  # a slow consumer: end rather than buffer
                            return
                        yield frame
                        last_sent = time.monotonic()
                    read_version = None if more else version
                    if more:
                        continue
                if time.monotonic() - last_sent >= keepalive:
                    yield ": keep-alive\n\n"
                    last_sent = time.monotonic()
                wait_for = min(keepalive - (time.monotonic() - last_sent), expires_at - time.time())
                hub.wait(listener, version, max(wait_for, 0.05), position=since)
        finally:
            presence_service.disconnected(user_id, session_id)
    finally:
        peer.close()
        hub.detach(listener)


Woken = tuple[int, int, int | None]  #: a woken stream's (user, position, auth session)


def _read_woken(user_id: int, since: int, session_id: int | None) -> tuple[bool, list[str], int]:
    """Whether a woken stream's session is live, its next batch (as SSE) and the position scanned.

    Asked together with every stream the same wake-up reached: one session statement and one
    log statement for up to a thousand of them; streams asking the same (a user's tabs) share
    one answer, rendered once.
    """
    reads = batcher_in(current_app.extensions, "parley.woken_streams", _answer_woken)
    return reads.get((user_id, since, session_id))


_read_ahead_lock = threading.Lock()


def _read_ahead() -> ReadAhead[Listener]:
    """Return the app's read-ahead for woken streams (one per app, made once)."""
    extensions = current_app.extensions
    with _read_ahead_lock:
        found = extensions.get("parley.read_ahead")
        if not isinstance(found, ReadAhead):
            app_context = current_app.app_context

            def read_many(listeners: list[Listener]) -> None:
                with app_context():
                    _read_for(listeners)

            found = extensions["parley.read_ahead"] = ReadAhead[Listener](read_many)
        return found


def _read_for(listeners: list[Listener]) -> None:
    """Leave each still-waiting listener what its stream would read now (see read_ahead)."""
    hub = event_service.waker()
    wanted: dict[Woken, list[Listener]] = {}
    for listener in listeners:
        position = listener.position
        if position is not None:  # still waiting (else it woke for something else and reads)
            key = (listener.user_id, position, listener.session_id)
            wanted.setdefault(key, []).append(listener)
    if not wanted:
        return
    versions = {user_id: hub.version(user_id) for user_id, _, _ in wanted}  # before the read
    try:
        answers = _answer_woken(list(wanted))
    finally:
        release_session()
    for key, waiting in wanted.items():
        for listener in waiting:
            listener.answer = (key[1], versions[key[0]], answers[key])


def _answer_woken(keys: list[Woken]) -> dict[Woken, tuple[bool, list[str], int]]:
    live = presence_service.live_sessions(sorted({sid for _, _, sid in keys if sid is not None}))
    ranges = event_crud.events_in_ranges([(u, s) for u, s, _ in keys], event_service.BATCH)
    answers = {}
    for key in keys:
        events, scanned = ranges[key[0], key[1]]
        answers[key] = (key[2] in live, _frames(events), scanned)
    return answers


def _frames(events: Sequence[Any]) -> list[str]:
    """Render log rows as SSE events, each with its cursor as ``id``."""
    views = [event_service.event_view(e) for e in events]
    return [_sse(view["type"], view, id=view["cursor"]) for view in views]


def _sse(type: str, data: Mapping[str, Any], id: str | None = None) -> str:
    """One SSE event; logged events carry their cursor as ``id``, ephemeral ones none."""
    body = json.dumps(jsonable(data), separators=(",", ":"))
    line = f"id: {id}\n" if id is not None else ""
    return f"{line}event: {type}\ndata: {body}\n\n"
