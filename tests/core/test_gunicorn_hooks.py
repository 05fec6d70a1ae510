"""The gunicorn internals app.core.gunicorn_hooks relies on: these fail if the pinned gunicorn
changes them, before a deployment finds out."""

from __future__ import annotations

import inspect
import json
from types import SimpleNamespace

from gunicorn import util
from gunicorn.http.message import Message
from gunicorn.workers import base

from app.core import gunicorn_hooks


def test_workers_write_their_own_errors_through_util_write_error() -> None:
    source = inspect.getsource(base.Worker.handle_error)
    assert "util.write_error(client, status_int, reason, mesg)" in source
    assert list(inspect.signature(util.write_error).parameters) == [
        "sock",
        "status_int",
        "reason",
        "mesg",
    ]


def test_a_request_marked_must_close_closes_its_connection() -> None:
    assert "self.must_close = False" in inspect.getsource(Message.__init__)
    should_close = inspect.getsource(Message.should_close)
    assert "if self.must_close:" in should_close


def test_install_replaces_the_error_writer() -> None:
    original = util.write_error
    try:
        gunicorn_hooks.install_problem_errors()
        assert util.write_error is gunicorn_hooks.write_problem
    finally:
        util.write_error = original


class FakeSocket:
    def __init__(self) -> None:
        self.sent = b""
        self.timeout: float | None = 5.0

    def gettimeout(self) -> float | None:
        return self.timeout

    def setblocking(self, flag: bool) -> None:
        self.timeout = None if flag else 0.0

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)


def test_write_problem_answers_problem_json_without_echoing_the_request() -> None:
    sock = FakeSocket()
    gunicorn_hooks.write_problem(sock, 414, "URI Too Long", "Invalid request line '<script>'")
    head, _, body = sock.sent.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 414 URI Too Long"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Connection"] == "close"
    assert int(headers["Content-Length"]) == len(body)
    problem = json.loads(body)
    assert problem["status"] == 414 and problem["code"] == "uri_too_long"
    assert problem["request_id"] == headers["X-Request-ID"]
    assert b"script" not in sock.sent


def test_unknown_statuses_still_get_a_problem() -> None:
    problem = json.loads(
        gunicorn_hooks.problem_bytes(418, "I'm a teapot").partition(b"\r\n\r\n")[2]
    )
    assert problem["status"] == 418 and problem["code"] == "error"


def test_only_declared_bodies_over_the_drain_limit_close() -> None:
    def request(*headers: tuple[str, str]) -> SimpleNamespace:
        return SimpleNamespace(headers=list(headers), must_close=False)

    big = request(("CONTENT-LENGTH", "2000"))
    small = request(("CONTENT-LENGTH", "1000"))
    chunked = request(("TRANSFER-ENCODING", "chunked"))
    for req in (big, small, chunked):
        gunicorn_hooks.close_after_oversized_body(req, drain_limit=1000)
    assert (big.must_close, small.must_close, chunked.must_close) == (True, False, False)
