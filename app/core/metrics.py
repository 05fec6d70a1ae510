"""Prometheus metrics at ``/metrics``: requests by endpoint and status, and the database pool.

Under gunicorn every worker is its own process with its own counters. gunicorn.conf.py points
``PROMETHEUS_MULTIPROC_DIR`` at a directory before any worker starts; each worker then writes its
values there and a scrape, whichever worker answers it, adds up all of them. Without that variable
(``flask run``, the test suite) the process's own registry is served.
"""

from __future__ import annotations

import hmac
import os
import time

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.core.errors import UnauthorizedError

#: Endpoint label of requests that matched no URL rule (404s and 405s on unknown paths).
UNMATCHED = "<unmatched>"

REQUESTS = Counter(
    "parley_http_requests_total",
    "HTTP requests served, by method, endpoint (the URL rule) and status.",
    ["method", "endpoint", "status"],
)
LATENCY = Histogram(
    "parley_http_request_duration_seconds",
    "Time from the request's arrival in Flask to its response, by method, endpoint and status.",
    ["method", "endpoint", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
# Gauges of live workers are summed; a dead worker's values leave with it (gunicorn.conf.py).
POOL_OPEN = Gauge(
    "parley_db_pool_connections",
    "Database connections open in the workers' pools.",
    multiprocess_mode="livesum",
)
POOL_IN_USE = Gauge(
    "parley_db_pool_checked_out",
    "Database connections checked out of the pools (in use by a request).",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "parley_db_pool_size",
    "Configured pool size, summed over the workers (overflow connections come on top).",
    multiprocess_mode="livesum",
)


class MetricsUnauthorizedError(UnauthorizedError):
    """401: ``METRICS_TOKEN`` is set and the scrape did not send it as a bearer token."""

    message = "A valid metrics token is required."


#: The method label's values: any other method a client makes up is counted as ``OTHER``, so
#: that no request can add a series (each one costs every scrape from then on).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def record_request(response: Response) -> Response:
    """Count the request and observe its latency (after_request hook).

    Every label is bounded: the method to :data:`METHODS` or ``OTHER``, the endpoint to the
    app's URL rules or ``<unmatched>``, the status to the codes the app answers with.
    """
    rule = request.url_rule
    endpoint = rule.rule if rule is not None else UNMATCHED
    method = request.method if request.method in METHODS else "OTHER"
    status = str(response.status_code)
    REQUESTS.labels(method, endpoint, status).inc()
    started = g.get("request_started")
    if started is not None:
        LATENCY.labels(method, endpoint, status).observe(time.perf_counter() - started)
    return response


def instrument_pool(engine: Engine) -> None:
    """Keep the pool gauges exact with the pool's own connect, checkout and close events."""
    size = getattr(engine.pool, "size", None)
    if callable(size):
        POOL_SIZE.inc(size())

    @event.listens_for(engine.pool, "connect")
    def _connected(*_: object) -> None:
        POOL_OPEN.inc()

    @event.listens_for(engine.pool, "close")
    def _closed(*_: object) -> None:
        POOL_OPEN.dec()

    @event.listens_for(engine.pool, "detach")
    def _detached(*_: object) -> None:
        POOL_OPEN.dec()  # a detached connection no longer belongs to the pool

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(*_: object) -> None:
        POOL_IN_USE.inc()

    @event.listens_for(engine.pool, "checkin")
    def _checked_in(*_: object) -> None:
        POOL_IN_USE.dec()


def scrape() -> Response:
    """Serve every metric in the Prometheus text format, summed over all worker processes."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise MetricsUnauthorizedError()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    # The text format the scraper asks for (Prometheus negotiates OpenMetrics or plain text).
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encoder(registry), mimetype=None)
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
    return response


def init_metrics(app: Flask, engine: Engine) -> None:
    """Count every request, watch the pool, and serve ``/metrics`` unless switched off."""
    if not app.config["METRICS_ENABLED"]:
        return
    app.after_request(record_request)
    instrument_pool(engine)
    app.add_url_rule("/metrics", "metrics", scrape, methods=["GET"])
