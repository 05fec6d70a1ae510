"""JSON log lines: one object per line, for Parley's loggers and gunicorn's own.

Apart from the rest of ``app.core.logging`` because gunicorn's master process loads this
formatter before it starts any worker, and must not import Flask (or anything else that
imports ``ssl``) there: the gevent worker patches the standard library once it has started,
and modules imported before that keep the unpatched versions.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import orjson


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as JSON, with any ``extra={"fields": {...}}`` merged in."""
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except orjson.JSONEncodeError:  # what orjson refuses (integers beyond 64 bits)
            return json.dumps(entry, default=str)


JsonFormatter.converter = time.gmtime
