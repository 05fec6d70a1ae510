"""Whether an event stream's client is still there, for any socket a busy process may hold."""

from __future__ import annotations

import fcntl
import resource
import socket
from collections.abc import Iterator

import pytest

from app.core.peer import MAX_UNSENT_BYTES, Peer


@pytest.fixture
def high_socketpair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair whose server end has a descriptor past 1023, as under 10,000 streams."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        if hard != resource.RLIM_INFINITY and hard < 2048:
            pytest.skip("the descriptor limit cannot be raised past 2048 here")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
    server, client = socket.socketpair()
    high = socket.socket(fileno=fcntl.fcntl(server.fileno(), fcntl.F_DUPFD, 1500))
    server.close()
    try:
        yield high, client
    finally:
        high.close()
        client.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_client_that_is_there_is_not_gone_whatever_its_descriptor(
    high_socketpair: tuple[socket.socket, socket.socket],
) -> None:
    server, _ = high_socketpair
    assert server.fileno() >= 1024
    peer = Peer(server, send_timeout=5)
    assert not peer.gone()
    assert not peer.backlogged()


def test_a_client_that_closed_is_gone_whatever_its_descriptor(
    high_socketpair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = high_socketpair
    peer = Peer(server, send_timeout=5)
    client.close()
    assert peer.gone()


def test_a_client_that_sent_bytes_is_still_there(
    high_socketpair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = high_socketpair
    client.sendall(b"x")
    assert not Peer(server, send_timeout=5).gone()


def test_a_closed_socket_is_gone() -> None:
    server, client = socket.socketpair()
    peer = Peer(server, send_timeout=5)
    server.close()
    client.close()
    assert peer.gone()


def test_a_client_that_stops_reading_is_backlogged() -> None:
    server, client = socket.socketpair()
    peer = Peer(server, send_timeout=5)
    server.setblocking(False)
    sent = 0
    try:
        while sent <= MAX_UNSENT_BYTES:
            sent += server.send(b"x" * 65536)
    except BlockingIOError:
        pass
    try:
        assert sent > MAX_UNSENT_BYTES
        assert peer.backlogged()
    finally:
        server.close()
        client.close()
