"""Logs under gunicorn: JSON lines only, the request id threaded through, and no secrets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from flask import Flask

from tests.e2e.conftest import start_gunicorn

pytestmark = pytest.mark.e2e

SECRET_PASSWORD = "correct-horse-battery-staple-9"
NEW_PASSWORD = "another-secret-passphrase-42"


def test_logs_are_json_with_request_ids_and_never_secrets(
    app: Flask, database_url: str, _schema: None, tmp_path: Path
) -> None:
    log_path = tmp_path / "server.log"
    server, base = start_gunicorn(database_url, log_path, workers=2, LOG_LEVEL="INFO")
    try:
        api = f"{base}/api/v1"
        requests.post(
            f"{api}/auth/register",
            json={"email": "quiet@example.com", "username": "quiet", "password": SECRET_PASSWORD},
            timeout=10,
        )
        pair = requests.post(
            f"{api}/auth/login", json={"login": "quiet", "password": SECRET_PASSWORD}, timeout=10
        ).json()
        rotated = requests.post(
            f"{api}/auth/refresh", json={"refresh_token": pair["refresh_token"]}, timeout=10
        ).json()
        headers = {
            "Authorization": f"Bearer {rotated['access_token']}",
            "X-Request-ID": "trace-logs-1",
        }
        changed = requests.post(
            f"{api}/auth/password",
            json={"current_password": SECRET_PASSWORD, "new_password": NEW_PASSWORD},
            headers=headers,
            timeout=10,
        )
        assert changed.status_code == 204
        requests.post(
            f"{api}/auth/login", json={"login": "quiet", "password": "wrong guess!!"}, timeout=10
        )
        # Production without MAIL_SERVER: the reset mail (and its token) is not written out.
        reset = requests.post(
            f"{api}/auth/password-reset", json={"email": "quiet@example.com"}, timeout=10
        )
        assert reset.status_code == 202
        deadline = time.monotonic() + 10
        while "mail not sent" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(timeout=20)
    text = log_path.read_text()
    for secret in (
        SECRET_PASSWORD,
        NEW_PASSWORD,
        pair["access_token"],
        pair["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
        "wrong guess!!",
    ):
        assert secret not in text
    assert "Use this token within one hour" not in text  # the reset mail's body
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    [unsent] = [e for e in lines if e["message"] == "mail not sent: MAIL_SERVER is not set"]
    assert unsent["to"] == "quiet@example.com" and "body" not in unsent
    assert any("MAIL_SERVER is not set" in e["message"] for e in lines if e is not unsent)
    assert any(entry["logger"] == "gunicorn.error" for entry in lines)
    traced = [e for e in lines if e.get("request_id") == "trace-logs-1"]
    assert (
        len(traced) == 1
        and traced[0]["path"] == "/api/v1/auth/password"
        and traced[0]["status"] == 204
    )
