"""Reading Server-Sent Events in the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def sse_blocks(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Yield each SSE block of a stream's lines as its fields (``id`` only on logged events).

    A keep-alive comment yields an empty block (a reader can check its clock), ``retry:`` a
    block without ``event``.
    """
    block: dict[str, str] = {}
    for line in lines:
        if line:
            if not line.startswith(":") and ": " in line:
                key, value = line.split(": ", 1)
                block[key] = value
            continue
        yield block
        block = {}
