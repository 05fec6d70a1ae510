"""The ceiling of `make bench`: a bare Flask app with one route returning a small JSON object.

Served by the same gunicorn configuration as Parley (``gunicorn -c gunicorn.conf.py
scripts.bench_ceiling:app``), it shows what the server, Flask and the machine allow before any
of Parley's work; Parley's figures are reported as a share of it.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/ping")
def ping() -> dict[str, str]:
    """Answer with a small JSON object."""
    return {"status": "ok"}
