"""Small helpers with no home of their own."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from werkzeug.routing import IntegerConverter

#: Largest id a client may send; anything above cannot exist and never reaches the database.
MAX_ID = 2**63 - 1

#: Members of a group conversation, its creator included.
MAX_GROUP_MEMBERS = 5000
#: User ids one call may name (creating a group, adding members).
MAX_IDS_PER_CALL = 500

#: Conversation kinds and member roles, as stored and as the API names them.
DIRECT, GROUP = "direct", "group"
OWNER, MEMBER = "owner", "member"
KINDS = (DIRECT, GROUP)
ROLES = (OWNER, MEMBER)


class IdConverter(IntegerConverter):
    """URL converter ``<id:name>``: a positive 64-bit integer, else the route does not match (404).

    Flask's ``int`` converter takes any number of digits, which overflows database integers.
    """

    def __init__(self, map: object) -> None:  # noqa: A002 - Werkzeug's parameter name
        super().__init__(map, min=1, max=MAX_ID)  # type: ignore[arg-type]


def iso_z(moment: datetime) -> str:
    """Format a timestamp as ISO 8601 in UTC with milliseconds and ``Z``."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00"


def on_gevent() -> bool:
    """Whether this process runs on gevent (the production worker on PostgreSQL)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("threading"))
