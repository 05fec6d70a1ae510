"""JSON log lines, request ids, and one access-log line per request."""

from __future__ import annotations

import logging
import random
import re
import sys
import time

from flask import Flask, Response, g, request

from app.core.log_format import JsonFormatter

#: A client-supplied X-Request-ID is kept only when it looks like an id, never as free text.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

access_log = logging.getLogger("parley.access")


#: Loggers written as JSON to stderr: Parley's own, and libraries whose warnings operators need
#: (Flask-Limiter says when its Redis storage fails and it falls back to memory).
JSON_LOGGERS = ("parley", "flask-limiter")


def configure_logging(level: str) -> None:
    """Send the records of :data:`JSON_LOGGERS` to stderr as JSON, once per process."""
    for name in JSON_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level if name == "parley" else "WARNING")
        if not any(getattr(h, "parley_json", False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            handler.parley_json = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
            logger.propagate = False


def assign_request_id() -> None:
    """Take the client's X-Request-ID when sane, or make a new one; start the clock."""
    given = request.headers.get("X-Request-ID", "")
    # 128 random bits, as hex: unique enough to find a request, and cheaper than uuid4's system
    # call (the random module reseeds in every forked worker).
    g.request_id = given if _SANE_REQUEST_ID.fullmatch(given) else f"{random.getrandbits(128):032x}"
    g.request_started = time.perf_counter()


def log_request(response: Response) -> Response:
    """Echo the request id and write the access-log line."""
    response.headers["X-Request-ID"] = g.get("request_id", "")
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    access_log.info(
        "request",
        extra={
            "fields": {
                "request_id": g.get("request_id"),
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "user_id": g.get("user_id"),
                "remote_addr": request.remote_addr,
            }
        },
    )
    return response


def init_request_logging(app: Flask) -> None:
    """Register the request-id and access-log hooks on the app."""
    configure_logging(app.config["LOG_LEVEL"])
    app.before_request(assign_request_id)
    app.after_request(log_request)
