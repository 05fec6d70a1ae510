"""Event streams read ahead for what woke them, and read on their own when that fails."""

from __future__ import annotations

import json
import time

import pytest
from flask import Flask

from app.core.peer import Listener
from app.services import event_stream_service
from tests.api.test_presence_routes import Stream
from tests.factories import Chat, UserFactory


def bodies(stream: Stream, count: int) -> list[str]:
    """The bodies of the next ``count`` messages the stream delivers (within 5 s)."""
    blocks = stream.events("message.created", count=count)
    return [json.loads(block.split("data: ", 1)[1])["data"]["body"] for block in blocks]


def test_streams_woken_by_a_commit_get_what_was_read_ahead_for_them(
    app: Flask, users: UserFactory, chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.config["EVENTS_KEEPALIVE_SECONDS"] = 0.2
    alice, bob = users.create("alice"), users.create("bob")
    group = chat.group(alice, bob)
    read_for: list[int] = []
    real = event_stream_service._read_for

    def recording(listeners: list[Listener]) -> None:
        read_for.append(len(listeners))
        real(listeners)

    monkeypatch.setattr(event_stream_service, "_read_for", recording)
    streams = [Stream(app, bob) for _ in range(3)]
    try:
        time.sleep(0.5)  # all three wait
        chat.send(alice, group["id"], "one")
        assert [bodies(stream, 1) for stream in streams] == [["one"]] * 3
        assert sum(read_for) >= 3  # read for all three streams, by the read-ahead
    finally:
        for stream in streams:
            stream.close()


def test_a_stream_reads_on_its_own_when_reading_ahead_fails(
    app: Flask, users: UserFactory, chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.config["EVENTS_KEEPALIVE_SECONDS"] = 0.2

    def broken(listeners: list[Listener]) -> None:
        raise RuntimeError("reading ahead is broken")

    monkeypatch.setattr(event_stream_service, "_read_for", broken)
    alice, bob = users.create("alice"), users.create("bob")
    direct = chat.direct(alice, bob)
    stream = Stream(app, bob)
    try:
        time.sleep(0.3)
        for body in ("one", "two", "three"):
            chat.send(alice, direct["id"], body)
        assert bodies(stream, 3) == ["one", "two", "three"]  # in order, none missed
    finally:
        stream.close()
