"""HTTP at the edge, against gunicorn with the production configuration: what gunicorn answers by
itself is problem+json too, a refused body leaves a keep-alive connection usable (or says it
closes), and two instances on one host do not share a control socket."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import start_gunicorn
from tests.e2e.test_gunicorn_auth import register_and_login

pytestmark = pytest.mark.e2e


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response with a Content-Length body from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed without response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


def assert_problem_bytes(status: int, headers: dict[str, str], body: bytes, expected: int) -> None:
    assert status == expected, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == expected and problem["code"] and problem["request_id"]
    assert problem["request_id"] == headers["x-request-id"]


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: parley\r\n\r\n"


def post_head(length: int | None, path: str = "/api/v1/auth/login") -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: parley\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("size", [70 * 1024, 1024 * 1024])
def test_after_a_413_the_keep_alive_connection_serves_the_next_request(
    server: str, size: int
) -> None:
    with connect(server) as sock:
        sock.sendall(post_head(size) + b"x" * size)
        status, headers, body = read_response(sock)
        assert_problem_bytes(status, headers, body, 413)
        assert headers["connection"] == "keep-alive"
        sock.sendall(HEALTHZ)
        assert read_response(sock)[0] == 200


def test_a_body_too_large_to_drain_is_answered_with_connection_close(server: str) -> None:
    size = 3 * 1024 * 1024
    with connect(server) as sock:
        sock.sendall(post_head(size))
        status, headers, body = read_response(sock)  # answered before the body is sent
        assert_problem_bytes(status, headers, body, 413)
        assert headers["connection"] == "close"


def test_a_chunked_body_over_the_limit_is_413_and_the_connection_lives_on(server: str) -> None:
    chunk = b"x" * (70 * 1024)
    with connect(server) as sock:
        sock.sendall(post_head(None) + b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n")
        status, headers, body = read_response(sock)
        assert_problem_bytes(status, headers, body, 413)
        assert json.loads(body)["code"] == "payload_too_large"
        sock.sendall(HEALTHZ)
        assert read_response(sock)[0] == 200


def test_repeated_query_parameters_are_422_not_gunicorns_html(server: str) -> None:
    """4 KiB of ``before=…`` parameters: once refused by gunicorn itself, as HTML."""
    token = register_and_login(server, "repeater")["access_token"]
    query = "&".join(f"before={i}" for i in range(600))
    assert len(query) > 4096
    response = requests.get(
        f"{server}/api/v1/conversations/1/messages?{query}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["errors"]["query"] == {"before": ["Given more than once."]}


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /healthz?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: parley\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: parley\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: parley\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ],
    ids=["request-line-over-8190", "header-over-8190", "garbage", "unknown-coding"],
)
def test_what_gunicorn_refuses_itself_is_problem_json(server: str, raw: bytes, status: int) -> None:
    with connect(server) as sock:
        sock.sendall(raw)
        got, headers, body = read_response(sock)
    assert_problem_bytes(got, headers, body, status)
    assert headers["connection"] == "close"
    assert b"<html" not in body


def test_instances_on_one_host_share_no_control_socket(
    database_url: str, _schema: None, tmp_path: Path
) -> None:
    """gunicorn's default control socket is one path per user: off here unless asked for."""
    home = tmp_path / "home"
    home.mkdir()
    own = tmp_path / "parley.ctl"
    host = {"HOME": str(home), "XDG_RUNTIME_DIR": str(tmp_path / "no-such-dir")}
    plain, _ = start_gunicorn(database_url, tmp_path / "a.log", workers=1, **host)
    chosen, _ = start_gunicorn(
        database_url, tmp_path / "b.log", workers=1, GUNICORN_CONTROL_SOCKET=str(own), **host
    )
    try:
        assert not (home / ".gunicorn").exists()  # the per-user default path is never made
        assert own.is_socket()  # a path given for one instance is that instance's own
    finally:
        for process in (plain, chosen):
            process.terminate()
            process.wait(timeout=20)
    assert not own.exists()
