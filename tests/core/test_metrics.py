"""``/metrics``: requests by URL rule and status, latency, pool gauges, optional token."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import make_app
from tests.factories import UserFactory
from tests.helpers import assert_problem
from tests.metrics_helpers import sample_value

CONVERSATION_RULE = "/api/v1/conversations/<id:conversation_id>"


def scrape(client: FlaskClient, **headers: str) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    return response.get_data(as_text=True)


def test_requests_are_counted_by_url_rule_and_status(
    client: FlaskClient, users: UserFactory
) -> None:
    alice = users.create()
    before = scrape(client)
    for conversation_id in (999_001, 999_002, 999_003):
        response = client.get(f"/api/v1/conversations/{conversation_id}", headers=alice.headers)
        assert response.status_code == 404
    assert client.get("/api/v1/users/me", headers=alice.headers).status_code == 200
    assert client.get("/no/such/path").status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return sample_value(after, name, **labels) - sample_value(before, name, **labels)

    # One series per rule, not per raw path: the three ids share it.
    assert (
        delta("parley_http_requests_total", method="GET", endpoint=CONVERSATION_RULE, status="404")
        == 3
    )
    assert (
        delta("parley_http_requests_total", method="GET", endpoint="/api/v1/users/me", status="200")
        == 1
    )
    assert delta("parley_http_requests_total", endpoint="<unmatched>", status="404") == 1
    assert CONVERSATION_RULE.replace("<id:conversation_id>", "999001") not in after
    assert (
        delta(
            "parley_http_request_duration_seconds_count", endpoint=CONVERSATION_RULE, status="404"
        )
        == 3
    )
    assert (
        delta(
            "parley_http_request_duration_seconds_bucket",
            endpoint="/api/v1/users/me",
            status="200",
            le="+Inf",
        )
        == 1
    )


def test_pool_gauges_follow_checkouts(client: FlaskClient, users: UserFactory) -> None:
    alice = users.create()
    client.get("/api/v1/users/me", headers=alice.headers)
    text = scrape(client)
    assert sample_value(text, "parley_db_pool_size") >= 1
    assert sample_value(text, "parley_db_pool_connections") >= 1
    # Every request has returned its connection by the time the scrape runs.
    assert sample_value(text, "parley_db_pool_checked_out") == 0


def test_a_metrics_token_is_required_when_configured(database_url: str, _schema: None) -> None:
    app = make_app(database_url, METRICS_TOKEN="scrape-secret-123")
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-secret-123"}):
        response = client.get("/metrics", headers=headers)
        assert_problem(response, 401, "not_authenticated")
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "parley_http_requests_total" in scrape(client, Authorization="Bearer scrape-secret-123")


def test_metrics_can_be_switched_off(database_url: str, _schema: None, app: Flask) -> None:
    disabled = make_app(database_url, METRICS_ENABLED=False)
    assert_problem(disabled.test_client().get("/metrics"), 404, "not_found")


def test_openmetrics_is_served_when_asked_for(client: FlaskClient) -> None:
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.status_code == 200
    assert response.content_type.startswith("application/openmetrics-text")
    assert response.get_data(as_text=True).rstrip().endswith("# EOF")


def test_made_up_methods_share_one_label(client: FlaskClient) -> None:
    """Labels are bounded: 300 invented methods add one series, not 300."""
    before = scrape(client)
    for i in range(300):
        assert client.open("/healthz", method=f"BREW{i}").status_code == 405
    after = scrape(client)
    assert "BREW" not in after
    labels = {"method": "OTHER", "endpoint": "<unmatched>", "status": "405"}
    assert (
        sample_value(after, "parley_http_requests_total", **labels)
        - sample_value(before, "parley_http_requests_total", **labels)
        == 300
    )
    assert len(after) - len(before) < 2_000  # a few new series at most


def test_a_lower_case_bearer_scheme_opens_the_metrics(database_url: str, _schema: None) -> None:
    app = make_app(database_url, METRICS_TOKEN="scrape-me")
    client = app.test_client()
    assert client.get("/metrics", headers={"Authorization": "bearer scrape-me"}).status_code == 200
    assert_problem(client.get("/metrics", headers={"Authorization": "bearer nope"}), 401)
