"""``/healthz`` and ``/readyz``: liveness and readiness probes for orchestrators."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from app.core.errors import problem_response
from app.extensions import Blueprint
from app.services import health_service

blp = Blueprint("health", __name__, url_prefix="", description="Probes.")


class HealthSchema(Schema):
    """Liveness."""

    status = fields.String()


class ReadinessSchema(Schema):
    """Readiness, with the failing part named."""

    status = fields.String()
    database = fields.String()
    migrations = fields.String()


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthSchema)
def healthz() -> Any:
    """Report that the process is up (touches nothing else)."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, description="Not ready: problem details naming `database` or `migrations`.")
def readyz() -> Any:
    """Report whether the database is reachable and migrated to head."""
    report = health_service.readiness()
    if report["database"] == "ok" and report["migrations"] == "head":
        return {"status": "ready", **report}
    failing = "database" if report["database"] != "ok" else "migrations"
    return problem_response(
        503,
        "service_unavailable",
        f"Not ready: {failing} is {report[failing]}.",
        headers={"Retry-After": "5"},
        extra=report,
    )
