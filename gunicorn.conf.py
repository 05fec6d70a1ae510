"""Production server settings for gunicorn (-c gunicorn.conf.py), all from the environment."""

import gc
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from gunicorn import glogging

bind = (
    os.environ.get("GUNICORN_BIND")
    or f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
)
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql"))
# On PostgreSQL, gevent: a waiting event stream or long-poll is a greenlet of a few dozen KB,
# not a thread, so a worker holds thousands of them while ordinary requests go on (psycopg,
# redis-py and SQLAlchemy's pool cooperate with gevent; password hashing runs on a real thread,
# see app.core.security). On SQLite, gthread: the sqlite3 module blocks the whole process
# while it waits for the write lock, which would stall every greenlet of a gevent worker.
# GUNICORN_THREADS=1 gives plain sync workers, for deployments that serve no events.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or (
    "gevent" if _postgres else ("gthread" if threads > 1 else "sync")
)
#: Connections one gevent worker serves at once (event streams and waiting long-polls included).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "10000"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "0"))
# Parley writes its own JSON access-log line per request (with the request id and user id);
# gunicorn's access log is off unless asked for.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Each worker listens on its own SO_REUSEPORT socket and the kernel spreads new connections over
# them. With one shared socket, the worker that wakes first accepts a burst of connections, and
# keep-alive keeps them there: one worker could serve every client while the other idled.
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "true").lower() in ("1", "true", "yes", "on")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's own limit on the request line (path and query), at its maximum: the app answers
# what fits, a client's repeated parameters included (422). Longer lines, like headers over
# gunicorn's limits, get gunicorn's own answer, made problem+json below.
limit_request_line = int(os.environ.get("GUNICORN_LIMIT_REQUEST_LINE", "8190"))
# gunicorn's control socket (for gunicornc) defaults to one path per user, so a second instance
# on the host (blue/green, tests) would take it over and remove it when it stops. Off unless
# GUNICORN_CONTROL_SOCKET names a path for this instance.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket


class ParleyLogger(glogging.Logger):
    """gunicorn's logger, building access lines only when GUNICORN_ACCESS_LOG asks for them.

    With a logging configuration set (below), gunicorn would format an access line for every
    request only for the WARNING-level logger to drop it; Parley writes its own.
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Log the request in gunicorn's format, when an access log is configured."""
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


logger_class = ParleyLogger
# gunicorn's own lines (worker starts, exits, timeouts) as JSON, like the app's.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.core.log_format.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        # Parley writes one access line per request itself; gunicorn's only when asked for.
        "gunicorn.access": {
            "handlers": ["stderr"],
            "level": "INFO" if accesslog else "WARNING",
            "propagate": False,
        },
    },
}


# Prometheus multiprocess mode: every worker writes its metrics into one directory, and a scrape
# served by any worker sums them all. The directory must be known before a worker imports
# prometheus_client; without PROMETHEUS_MULTIPROC_DIR, a private one is made per server.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="parley-metrics-")
_metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_starting(server: Any) -> None:
    """Start from empty metrics: files of an earlier run would be added to this one's."""
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in _metrics_dir.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a finished worker's live gauges (its counters still count)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """Remove the metrics directory this server made for itself."""
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


def pre_request(worker: Any, req: Any) -> None:
    """Close the connection after a body too large to drain (its 413 says so)."""
    from app.core.http import DRAIN_LIMIT
    from app.library_overrides import close_after_oversized_body

    close_after_oversized_body(req, DRAIN_LIMIT)


#: The worker's garbage collection thresholds (see post_worker_init).
GC_THRESHOLDS = (50_000, 20, 10)


def post_worker_init(worker: Any) -> None:
    """Tune the worker's garbage collection; on SIGTERM, end event connections, then stop.

    gunicorn's graceful stop lets in-flight requests finish (up to graceful_timeout) while it
    accepts no new ones; a waiting long-poll or an open event stream would otherwise hold the
    worker for up to that long. They answer now instead and the clients reconnect elsewhere.
    """
    from app.core.wakeup import begin_shutdown
    from app.library_overrides import install_problem_errors

    install_problem_errors()  # in the worker, after gevent (if it is the worker) patched it

    # A gevent worker holding 5,000 event streams tracks about 700,000 objects (some 140 per
    # stream: its greenlet, request, socket, generators), and a full collection of them stops
    # its event loop for 0.6-0.8 s. A message into a big group wakes thousands of streams at
    # once; with CPython's default thresholds (700, 10, 10) the garbage of each such wave is
    # collected young so often that what is alive at that moment is promoted, and every few
    # waves a full collection stalls the next one. Collect young objects every 50,000
    # allocations instead (each wave's objects die young), and leave out of every collection
    # what was loaded before the first request (modules, the app, its statements).
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

    stop_gracefully = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        begin_shutdown()
        if callable(stop_gracefully):
            stop_gracefully(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
