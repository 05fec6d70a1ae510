"""The OpenAPI description and the offline docs page."""

from __future__ import annotations

import re

from flask.testing import FlaskClient


def test_openapi_describes_every_endpoint_and_security(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    # The Swagger UI served at /api/docs (4.15) renders OpenAPI 3.0 only: 3.1 shows an error page.
    assert spec["openapi"].startswith("3.0.")
    paths = spec["paths"]
    for path in (
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/token",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/sessions",
        "/api/v1/auth/sessions/{session_id}",
        "/api/v1/auth/password",
        "/api/v1/users/me",
        "/api/v1/users/{user_id}",
        "/api/v1/users",
        "/api/v1/admin/users",
        "/api/v1/admin/users/{user_id}",
        "/healthz",
        "/readyz",
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}",
        "/api/v1/conversations/{conversation_id}/members",
        "/api/v1/conversations/{conversation_id}/members/{user_id}",
        "/api/v1/conversations/{conversation_id}/read",
        "/api/v1/conversations/{conversation_id}/unread",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/conversations/{conversation_id}/messages/{seq}",
    ):
        assert path in paths, path
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["oauth2"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert paths["/api/v1/users/me"]["get"]["security"] == [{"bearerAuth": []}, {"oauth2": []}]
    assert "security" not in paths["/api/v1/auth/login"]["post"]
    token_body = paths["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in token_body
    register_schema = paths["/api/v1/auth/register"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert register_schema


def test_docs_page_uses_only_local_assets(client: FlaskClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/api/docs/assets/") for s in sources)
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.data) > 1000
    assert client.get("/api/docs/assets/oauth2-redirect.html").status_code == 200
    assert "/api/v1/openapi.json" in html
