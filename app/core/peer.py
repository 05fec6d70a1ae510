"""The client at the other end of an event connection: its listener, and whether it still reads.

A waiting stream writes nothing until its next event or keep-alive; a client that went away
meanwhile would keep its connection, its slot and its memory until then. Under gevent,
:meth:`Peer.watch` asks the event loop to wake the listener the moment the socket turns
readable (an SSE client sends nothing after its request, so readable means it closed or reset),
and :meth:`Peer.gone` confirms it (asking the kernel only then: a wake-up that reaches thousands
of streams costs no system call per stream for it); on other workers the stream checks at each
wake-up.

A client that stops reading (a slow consumer) fills the socket's send buffer. Before each event
the stream asks the kernel how many bytes are still unsent (:meth:`Peer.backlogged`); past
:data:`MAX_UNSENT_BYTES` it ends the stream instead of blocking or buffering, and the client
resumes later with Last-Event-ID. The socket's send timeout is the backstop where the kernel
cannot tell.
"""

from __future__ import annotations

import fcntl
import select
import socket
import struct
import termios
import threading
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.core.utils import on_gevent

if TYPE_CHECKING:
    from app.core.read_ahead import ReadAhead

#: Ephemeral events one stream keeps for its reader at most; older ones are dropped.
INBOX_SIZE = 64
#: Unsent bytes at which a stream's client counts as a slow consumer.
MAX_UNSENT_BYTES = 256 * 1024
#: The send buffer of a stream's socket: room for the unsent limit and one more large event,
#: so a write never blocks before the limit is seen.
SEND_BUFFER_BYTES = 512 * 1024


def _real_poll() -> Any:
    """Return a poll object of the system's own (gevent's patched one may yield)."""
    if on_gevent():
        from gevent.monkey import get_original

        return get_original("select", "poll")()
    return select.poll()


class Listener:
    """One open event connection of a user: what wakes it, and its ephemeral events."""

    __slots__ = (
        "user_id",
        "event",
        "inbox",
        "position",
        "hung_up",
        "session_id",
        "read_ahead",
        "answer",
    )

    def __init__(self, user_id: int, ephemeral: bool) -> None:
        self.user_id = user_id
        self.event = threading.Event()
        #: Ephemeral events (type, data) not yet sent; None for a long-poll, which gets none.
        self.inbox: deque[tuple[str, Mapping[str, Any]]] | None = (
            deque(maxlen=INBOX_SIZE) if ephemeral else None
        )
        #: While it waits: how far its last read of the log went (for the poller).
        self.position: int | None = None
        #: Set when its client may have gone away: it wakes to check.
        self.hung_up = False
        #: The auth session it was opened with (checked when it is read for).
        self.session_id: int | None = None
        #: Who reads for it when a commit wakes it (see app.core.read_ahead); None: itself.
        self.read_ahead: ReadAhead[Listener] | None = None
        #: What the read-ahead left it: (position read from, wake-up version, what was read).
        self.answer: tuple[int, int, Any] | None = None

    def take_ephemeral(self) -> list[tuple[str, Mapping[str, Any]]]:
        """Return and forget the ephemeral events waiting for this listener."""
        taken: list[tuple[str, Mapping[str, Any]]] = []
        while self.inbox:
            taken.append(self.inbox.popleft())
        return taken

    def take_answer(self, position: int, version: int) -> Any:
        """Return what was read ahead for it, if read from ``position`` at ``version``; else None.

        Forgotten either way: an answer is used once, and a stale one never.
        """
        answer, self.answer = self.answer, None
        if answer is None or answer[0] != position or answer[1] != version:
            return None
        return answer[2]

    def hang_up(self) -> None:
        """Note that the client may have gone away, and wake the listener to check."""
        self.hung_up = True
        self.event.set()


class Peer:
    """The socket of one event stream (None under servers that do not expose it)."""

    def __init__(self, sock: socket.socket | None, send_timeout: float) -> None:
        self.sock = sock
        self._watcher: Any = None
        #: While True, the event loop watches the socket: it is not gone, no need to ask.
        self._armed = False
        self._timeout: float | None = None
        if sock is not None:
            try:
                self._timeout = sock.gettimeout()
                sock.settimeout(send_timeout)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            except OSError:  # already closed: gone() says so
                pass

    def watch(self, listener: Listener) -> None:
        """Wake ``listener`` as soon as the client closes the connection (under gevent)."""
        if self.sock is None or not on_gevent():
            return
        from gevent import get_hub

        watcher = get_hub().loop.io(self.sock.fileno(), 1)

        def readable() -> None:  # runs in the event loop: no blocking here
            watcher.stop()
            self._armed = False
            listener.hang_up()

        watcher.start(readable)
        self._watcher = watcher
        self._armed = True

    def gone(self) -> bool:
        """Whether the client has closed its end (a read would find the end of the stream)."""
        if self.sock is None or self._armed:  # armed: the loop would have said so
            return False
        try:
            fd = self.sock.fileno()
            if fd < 0:  # closed underneath us
                return True
            # poll(), not select(): select() refuses descriptors past 1023, and a process
            # holding thousands of streams has them (gevent's select() calls the real one).
            poller = _real_poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(0)) and self.sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):  # reset
            return True

    def backlogged(self) -> bool:
        """Whether the client has left more than :data:`MAX_UNSENT_BYTES` unread."""
        if self.sock is None:
            return False
        try:
            raw = fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        except (OSError, ValueError):
            return False
        return int(struct.unpack("i", raw)[0]) > MAX_UNSENT_BYTES

    def close(self) -> None:
        """Stop watching, and give the socket back its own timeout (it may serve keep-alive)."""
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
            self._armed = False
        if self.sock is not None:
            try:
                self.sock.settimeout(self._timeout)
            except OSError:
                pass
