"""Every forgery and misuse of a bearer token is a 401, and the write it carried never happens."""

from __future__ import annotations

import base64
import json
import time
import warnings
from collections.abc import Callable

import jwt as pyjwt
import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from flask_jwt_extended import get_jwt, get_jwt_header, get_jwt_identity

from app.api.security import auth_required
from app.services import user_service
from tests.factories import PASSWORD
from tests.security.conftest import World, assert_refused, database_state

ME = "/api/v1/users/me"
OTHER_KEY = "another-key-of-at-least-32-bytes-long!!"


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def claims(app: Flask, token: str) -> dict[str, object]:
    return dict(pyjwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"]))


def signed(app: Flask, payload: dict[str, object], key: str = "", alg: str = "HS256") -> str:
    return pyjwt.encode(payload, key or app.config["JWT_SECRET_KEY"], algorithm=alg)


def alg_none(app: Flask, client: FlaskClient, w: World) -> str:
    return f"Bearer {b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims(app, w.alice.access_token))}."


def wrong_key(app: Flask, client: FlaskClient, w: World) -> str:
    return f"Bearer {signed(app, claims(app, w.alice.access_token), OTHER_KEY)}"


def stronger_alg_same_key(app: Flask, client: FlaskClient, w: World) -> str:
    with warnings.catch_warnings():  # PyJWT warns that the key is short for HS512
        warnings.simplefilter("ignore")
        return f"Bearer {signed(app, claims(app, w.alice.access_token), alg='HS512')}"


def edited_payload(app: Flask, client: FlaskClient, w: World) -> str:
    header, _, signature = w.alice.access_token.split(".")
    payload = {**claims(app, w.alice.access_token), "sub": str(w.bob.id)}
    return f"Bearer {header}.{b64(payload)}.{signature}"


def stripped_signature(app: Flask, client: FlaskClient, w: World) -> str:
    header, payload, _ = w.alice.access_token.split(".")
    return f"Bearer {header}.{payload}."


def expired(app: Flask, client: FlaskClient, w: World) -> str:
    payload = claims(app, w.alice.access_token)
    payload["exp"] = int(time.time()) - 10
    return f"Bearer {signed(app, payload)}"


def not_yet_valid(app: Flask, client: FlaskClient, w: World) -> str:
    payload = claims(app, w.alice.access_token)
    payload["nbf"] = int(time.time()) + 3600
    return f"Bearer {signed(app, payload)}"


def other_users_session(app: Flask, client: FlaskClient, w: World) -> str:
    # Validly signed (as if the key leaked), but Bob's id on Alice's session.
    return f"Bearer {signed(app, {**claims(app, w.alice.access_token), 'sub': str(w.bob.id)})}"


def missing_session_claim(app: Flask, client: FlaskClient, w: World) -> str:
    payload = claims(app, w.alice.access_token)
    del payload["sid"]
    return f"Bearer {signed(app, payload)}"


def refresh_typed_claims(app: Flask, client: FlaskClient, w: World) -> str:
    return f"Bearer {signed(app, {**claims(app, w.alice.access_token), 'type': 'refresh'})}"


def refresh_token_as_bearer(app: Flask, client: FlaskClient, w: World) -> str:
    return f"Bearer {w.alice.refresh_token}"


def after_logout(app: Flask, client: FlaskClient, w: World) -> str:
    assert client.post("/api/v1/auth/logout", headers=w.alice.headers).status_code == 204
    return f"Bearer {w.alice.access_token}"


def after_session_revoked(app: Flask, client: FlaskClient, w: World) -> str:
    sessions = client.get("/api/v1/auth/sessions", headers=w.alice.headers).get_json()["items"]
    for session in sessions:
        client.delete(f"/api/v1/auth/sessions/{session['id']}", headers=w.alice.headers)
    return f"Bearer {w.alice.access_token}"


def after_password_change_elsewhere(app: Flask, client: FlaskClient, w: World) -> str:
    # A password change keeps the session that made it and ends every other one.
    other = client.post("/api/v1/auth/login", json={"login": "alice", "password": PASSWORD})
    changed = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers={"Authorization": f"Bearer {other.get_json()['access_token']}"},
    )
    assert changed.status_code == 204
    return f"Bearer {w.alice.access_token}"


def after_deactivation(app: Flask, client: FlaskClient, w: World) -> str:
    done = client.patch(
        f"/api/v1/admin/users/{w.alice.id}", json={"is_active": False}, headers=w.root.headers
    )
    assert done.status_code == 200
    return f"Bearer {w.alice.access_token}"


def header(value: str) -> Callable[[Flask, FlaskClient, World], str]:
    return lambda app, client, w: value


FORGERIES: list[tuple[str, Callable[[Flask, FlaskClient, World], str], str | None]] = [
    ("alg-none", alg_none, "token_invalid"),
    ("wrong-key", wrong_key, "token_invalid"),
    ("hs512-same-key", stronger_alg_same_key, "token_invalid"),
    ("edited-payload", edited_payload, "token_invalid"),
    ("stripped-signature", stripped_signature, "token_invalid"),
    ("expired", expired, "token_expired"),
    ("not-yet-valid", not_yet_valid, "token_invalid"),
    ("other-users-session", other_users_session, "token_revoked"),
    ("missing-session-claim", missing_session_claim, None),
    ("refresh-type-claim", refresh_typed_claims, None),
    ("refresh-token-as-bearer", refresh_token_as_bearer, "token_invalid"),
    ("after-logout", after_logout, "token_revoked"),
    ("after-session-revoked", after_session_revoked, "token_revoked"),
    ("after-password-change-elsewhere", after_password_change_elsewhere, "token_revoked"),
    ("after-deactivation", after_deactivation, "token_revoked"),
    ("scheme-only", header("Bearer"), None),
    ("scheme-and-space", header("Bearer "), None),
    ("basic-scheme", header("Basic YWxpY2U6cGFzcw=="), None),
    ("three-junk-parts", header("Bearer a.b.c"), "token_invalid"),
    ("bearer-with-extra-word", header("Bearer a.b.c extra"), "token_invalid"),
    ("two-bearer-fields", header("Bearer a.b.c, Bearer d.e.f"), None),
    ("non-ascii", header("Bearer \u00e9\u00e9"), None),
    ("other-scheme", header("Token abc"), None),
    ("empty", header(""), None),
]


@pytest.mark.parametrize(
    ("forge", "code"), [case[1:] for case in FORGERIES], ids=[case[0] for case in FORGERIES]
)
def test_forged_or_dead_tokens_are_401_and_change_nothing(
    app: Flask,
    client: FlaskClient,
    world: World,
    forge: Callable[[Flask, FlaskClient, World], str],
    code: str | None,
) -> None:
    authorization = forge(app, client, world)
    before = database_state(app)
    response = client.patch(
        ME, json={"display_name": "pwned"}, headers={"Authorization": authorization}
    )
    body = assert_refused(app, before, response, 401, code)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "pwned" not in json.dumps(body)


@pytest.mark.parametrize("where", ["query", "cookie"])
def test_tokens_outside_the_header_are_ignored(
    app: Flask, client: FlaskClient, world: World, where: str
) -> None:
    before = database_state(app)
    if where == "query":
        response = client.patch(
            f"{ME}?access_token={world.alice.access_token}", json={"display_name": "pwned"}
        )
    else:
        client.set_cookie("access_token_cookie", world.alice.access_token)
        response = client.patch(ME, json={"display_name": "pwned"})
    assert_refused(app, before, response, 401, "not_authenticated")


def test_access_token_is_not_a_refresh_token(app: Flask, client: FlaskClient, world: World) -> None:
    before = database_state(app)
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": world.alice.access_token})
    assert_refused(app, before, response, 401)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(
    client: FlaskClient, world: World, scheme: str
) -> None:
    """RFC 7235 §2.1: the authentication scheme is case-insensitive."""
    response = client.get(ME, headers={"Authorization": f"{scheme} {world.alice.access_token}"})
    assert response.status_code == 200, response.get_json()


def test_the_librarys_helpers_work_in_parleys_views(
    client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind the guard, flask-jwt-extended's request context is set, as its users expect."""
    seen: dict[str, object] = {}
    own_account = user_service.get_own_account

    def looking(user_id: int) -> dict[str, object]:
        seen.update(identity=get_jwt_identity(), claims=get_jwt(), header=get_jwt_header())
        return own_account(user_id)

    monkeypatch.setattr(user_service, "get_own_account", looking)
    assert client.get(ME, headers=world.alice.headers).status_code == 200
    assert seen["identity"] == str(world.alice.id)
    assert seen["claims"]["type"] == "access" and "sid" in seen["claims"]  # type: ignore[index]
    assert seen["header"] == {"alg": "HS256", "typ": "JWT"}


def test_a_new_guarded_view_can_use_the_librarys_helpers(database_url: str, _schema: None) -> None:
    from tests.conftest import clean_database, make_app
    from tests.factories import UserFactory

    app = make_app(database_url)
    probe = Blueprint("probe", __name__)

    @probe.route("/probe")
    @auth_required
    def whoami() -> dict[str, object]:
        return {"identity": get_jwt_identity(), "session": get_jwt()["sid"]}

    app.register_blueprint(probe)
    try:
        client = app.test_client()
        alice = UserFactory(app, client).create("alice")
        body = client.get("/probe", headers=alice.headers).get_json()
        assert body["identity"] == str(alice.id) and isinstance(body["session"], int)
        assert client.get("/probe").status_code == 401
    finally:
        clean_database(app)
