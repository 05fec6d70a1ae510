"""Auth service rules that need more than one request at a time."""

from __future__ import annotations

import threading

from flask import Flask
from flask_jwt_extended import decode_token

from app.services import auth_service
from tests.factories import UserFactory


def test_racing_refreshes_of_one_token_never_both_succeed(app: Flask, users: UserFactory) -> None:
    user = users.create()
    results: list[int] = []
    barrier = threading.Barrier(4)

    def refresh() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
        results.append(response.status_code)

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(200) <= 1
    assert all(code in (200, 401, 503) for code in results), results
    # Whatever the interleaving, a token used twice is reuse: the session is dead.
    me = app.test_client().get("/api/v1/users/me", headers=user.headers)
    assert me.status_code == 401


def test_live_sessions_checks_thousands_of_sessions_at_once(app: Flask, users: UserFactory) -> None:
    """The event sweep asks about every connection of a process: past SQLite's bind limit too."""
    kept, ended = users.create(), users.create()
    client = app.test_client()
    assert client.post("/api/v1/auth/logout", headers=ended.headers).status_code == 204
    with app.app_context():
        kept_sid, ended_sid = (decode_token(u.access_token)["sid"] for u in (kept, ended))
        never_existed = range(10**9, 10**9 + 40_000)
        live = auth_service.live_sessions([*never_existed, kept_sid, ended_sid])
    assert live == {kept_sid}
