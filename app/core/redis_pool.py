"""Redis clients for many concurrent callers.

redis-py's default pool holds at most 100 connections and refuses the 101st caller with "Too
many connections". Under gevent thousands of event connections may open or close at once, each
with a Redis call (its connection slot), so Parley's clients use a pool that makes such a caller
wait, up to :data:`WAIT_SECONDS`, for a connection to come free.
"""

from __future__ import annotations

from typing import Any

#: Connections one process keeps to Redis at most, per client.
MAX_CONNECTIONS = 50
#: Seconds a caller waits for a free connection before the call fails (and falls back).
WAIT_SECONDS = 5


def client(url: str) -> Any:
    """Return a Redis client on a blocking pool, with short socket timeouts."""
    import redis

    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=WAIT_SECONDS,
        socket_timeout=1,
        socket_connect_timeout=1,
    )
    return redis.Redis(connection_pool=pool)
