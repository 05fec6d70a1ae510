"""Bulk-seed a migrated PostgreSQL database with the benchmark data set, in SQL.

Scales (users, conversations, messages):

* small: 100, 1,000, 10,000. User 1 is in 51 conversations; the big group holds 5,000 messages.
* large: 10,000, 100,000, 2,000,000. User 1 is in 5,001 conversations; the big group holds
  1,000,000 messages.

At both scales:

* conversation 1 is a group of 50 members (users 1-50, user 1 its owner) holding the big
  message count: the history and send scenarios use it;
* user 1 has a direct conversation with each of the next users (the many-conversations user);
* the last user has exactly 10 direct conversations (the few-conversations user);
* every other conversation is a direct one between two other users, with an equal share of the
  remaining messages;
* read markers leave 0 to 2 messages unread per member (20 in the big group for user 1).

Every user's password is ``PASSWORD``, hashed once with the production method. Rows are made
by ``INSERT … SELECT generate_series`` inside PostgreSQL, so the large set takes about a minute.

    python scripts/bench_seed.py <database URL> small|large
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import psycopg
from werkzeug.security import generate_password_hash

PASSWORD = "benchmark password 1"
OWASP_SCRYPT = "scrypt:65536:8:2"


@dataclass(frozen=True)
class Scale:
    """The size of one benchmark data set."""

    name: str
    users: int
    conversations: int
    messages: int
    #: Direct conversations of user 1 (plus the big group).
    heavy_conversations: int
    #: Messages in the big group (conversation 1).
    big_messages: int

    @property
    def light_user(self) -> int:
        """The user with exactly 10 conversations."""
        return self.users


SCALES = {
    "small": Scale("small", 100, 1_000, 10_000, 50, 5_000),
    "large": Scale("large", 10_000, 100_000, 2_000_000, 5_000, 1_000_000),
}
#: Members of the big group (conversation 1): users 1..GROUP_SIZE.
GROUP_SIZE = 50
LIGHT_CONVERSATIONS = 10


def libpq_url(url: str) -> str:
    """Strip SQLAlchemy's driver name from a PostgreSQL URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def seed(database_url: str, scale: Scale, log: bool = True) -> None:
    """Fill an empty, migrated database with ``scale``'s data set."""
    started = time.monotonic()
    users, convs, heavy = scale.users, scale.conversations, scale.heavy_conversations
    light = scale.light_user
    first_light = heavy + 2  # conversation ids: 1 group, 2..heavy+1 user 1's, then the light's
    first_generic = first_light + LIGHT_CONVERSATIONS
    # Generic pairs (a, a + d mod m) over users 2..users-1: distinct while d <= (m - 1) / 2.
    m = users - 2
    assert 1 + (convs - first_generic) // m <= (m - 1) // 2, "not enough distinct pairs"
    per_conversation = (scale.messages - scale.big_messages) // (convs - 1)
    big = scale.messages - per_conversation * (convs - 1)
    password_hash = generate_password_hash(PASSWORD, method=OWASP_SCRYPT)

    steps = [
        (
            "users",
            """
            INSERT INTO users (id, email, username, username_key, display_name, password_hash,
                               is_admin, is_active, created_at, updated_at, password_changed_at)
            SELECT i, 'user' || i || '@bench.example', 'user' || i, 'user' || i, 'User ' || i,
                   %(hash)s, i = 1, true, now() - interval '60 days', now() - interval '60 days',
                   now() - interval '60 days'
            FROM generate_series(1, %(users)s) AS i
            """,
        ),
        (
            "conversations",
            """
            INSERT INTO conversations (id, kind, title, direct_key, created_by, created_at,
                                       last_seq, last_activity_at)
            SELECT 1, 'group', 'Bench group', NULL, 1, now() - interval '59 days', 0,
                   now() - interval '59 days'
            UNION ALL
            SELECT c, 'direct', NULL, '1:' || c, 1, now() - interval '59 days', 0,
                   now() - interval '59 days'
            FROM generate_series(2, %(heavy)s + 1) AS c
            UNION ALL
            SELECT c, 'direct', NULL, (c - %(first_light)s + 2) || ':' || %(light)s,
                   %(light)s, now() - interval '59 days', 0, now() - interval '59 days'
            FROM generate_series(%(first_light)s, %(first_generic)s - 1) AS c
            UNION ALL
            SELECT c, 'direct', NULL, least(a, b) || ':' || greatest(a, b), a,
                   now() - interval '59 days', 0, now() - interval '59 days'
            FROM (
                SELECT c, 2 + n %% %(m)s AS a, 2 + (n %% %(m)s + 1 + n / %(m)s) %% %(m)s AS b
                FROM (SELECT c, c - %(first_generic)s AS n
                      FROM generate_series(%(first_generic)s, %(convs)s) AS c) AS numbered
            ) AS pairs
            """,
        ),
        (
            "members",
            """
            INSERT INTO conversation_members (conversation_id, user_id, role, joined_at,
                                              last_read_seq, last_activity_at)
            SELECT 1, u, CASE WHEN u = 1 THEN 'owner' ELSE 'member' END,
                   now() - interval '59 days', 0, now() - interval '59 days'
            FROM generate_series(1, %(group)s) AS u
            UNION ALL
            SELECT c.id, p.uid, CASE WHEN p.uid = c.created_by THEN 'owner' ELSE 'member' END,
                   c.created_at, 0, c.created_at
            FROM conversations AS c
            CROSS JOIN LATERAL (
                SELECT split_part(c.direct_key, ':', 1)::bigint AS uid
                UNION ALL
                SELECT split_part(c.direct_key, ':', 2)::bigint
            ) AS p
            WHERE c.kind = 'direct'
            """,
        ),
        (
            "messages (big group)",
            """
            INSERT INTO messages (conversation_id, seq, sender_id, body, created_at)
            SELECT 1, s, 1 + s %% %(group)s,
                   'Bench message ' || s || ': the quick brown fox jumps over the lazy dog',
                   now() - interval '58 days' + s * interval '1 millisecond'
            FROM generate_series(1, %(big)s) AS s
            """,
        ),
        (
            "messages (the rest)",
            """
            INSERT INTO messages (conversation_id, seq, sender_id, body, created_at)
            SELECT c.id, s,
                   split_part(c.direct_key, ':', 1 + s %% 2)::bigint,
                   'Message ' || s || ' of conversation ' || c.id || ', hello there',
                   now() - interval '30 days' + c.id * interval '10 seconds'
                         + s * interval '1 second'
            FROM conversations AS c
            CROSS JOIN generate_series(1, %(per)s) AS s
            WHERE c.id > 1
            """,
        ),
        (
            "conversation activity",
            """
            UPDATE conversations AS c
            SET last_seq = CASE WHEN c.id = 1 THEN %(big)s ELSE %(per)s END,
                last_activity_at = m.created_at
            FROM messages AS m
            WHERE m.conversation_id = c.id
              AND m.seq = CASE WHEN c.id = 1 THEN %(big)s ELSE %(per)s END
            """,
        ),
        (
            "read markers and list order",
            """
            UPDATE conversation_members AS cm
            SET last_activity_at = c.last_activity_at,
                last_read_seq = CASE
                WHEN cm.conversation_id = 1 AND cm.user_id = 1 THEN c.last_seq - 20
                ELSE greatest(c.last_seq - (cm.user_id + cm.conversation_id) %% 3, 0)
            END
            FROM conversations AS c
            WHERE c.id = cm.conversation_id
            """,
        ),
        (
            "sequences",
            """
            SELECT setval(pg_get_serial_sequence('users', 'id'), %(users)s),
                   setval(pg_get_serial_sequence('conversations', 'id'), %(convs)s)
            """,
        ),
        ("analyze", "ANALYZE"),
        # Write the seed's dirty pages out now. The large seed writes gigabytes of WAL; the
        # checkpoint it triggers is spread over minutes and would otherwise land in the first
        # scenarios measured.
        ("checkpoint", "CHECKPOINT"),
    ]
    params = {
        "hash": password_hash,
        "users": users,
        "convs": convs,
        "heavy": heavy,
        "light": light,
        "first_light": first_light,
        "first_generic": first_generic,
        "m": m,
        "group": GROUP_SIZE,
        "big": big,
        "per": per_conversation,
    }
    # Client-side binding: literal numbers, so generate_series and friends pick their types.
    with psycopg.connect(libpq_url(database_url), cursor_factory=psycopg.ClientCursor) as conn:
        for label, sql in steps:
            step_started = time.monotonic()
            conn.execute(sql, params)
            conn.commit()
            if log:
                print(f"  seed {scale.name}: {label} {time.monotonic() - step_started:.1f} s")
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM conversations),"
            " (SELECT count(*) FROM messages),"
            " (SELECT count(*) FROM conversation_members WHERE user_id = 1),"
            " (SELECT count(*) FROM conversation_members WHERE user_id = %s),"
            " (SELECT last_seq FROM conversations WHERE id = 1)",
            (light,),
        ).fetchone()
    assert counts is not None
    expected = (users, convs, scale.messages, heavy + 1, LIGHT_CONVERSATIONS, big)
    if tuple(counts) != expected:
        raise SystemExit(f"seeded {tuple(counts)}, expected {expected}")
    if log:
        print(
            f"  seed {scale.name}: {users:,} users, {convs:,} conversations, "
            f"{scale.messages:,} messages in {time.monotonic() - started:.0f} s"
        )


def main() -> None:
    """Seed the database named on the command line."""
    if len(sys.argv) != 3 or sys.argv[2] not in SCALES:
        raise SystemExit("usage: bench_seed.py <database URL> small|large")
    seed(sys.argv[1], SCALES[sys.argv[2]])


if __name__ == "__main__":
    main()
