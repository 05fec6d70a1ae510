"""Opaque keyset cursors."""

from __future__ import annotations

import pytest

from app.core.errors import ValidationFailedError
from app.core.pagination import decode_cursor, encode_cursor, page_of


def test_round_trip() -> None:
    cursor = encode_cursor(["bob", 7], "secret")
    assert decode_cursor(cursor, "secret", 2) == ["bob", 7]


@pytest.mark.parametrize("cursor", ["", ".", "abc", "abc.def", "eyJ4IjoxfQ.AAAA"])
def test_bad_cursors_are_rejected(cursor: str) -> None:
    with pytest.raises(ValidationFailedError):
        decode_cursor(cursor, "secret", 1)


def test_cursor_from_another_key_is_rejected() -> None:
    with pytest.raises(ValidationFailedError):
        decode_cursor(encode_cursor([1], "one"), "two", 1)


def test_page_of() -> None:
    assert page_of([1, 2], 2, lambda x: [x], "s") == ([1, 2], None)
    page, cursor = page_of([1, 2, 3], 2, lambda x: [x], "s")
    assert page == [1, 2] and cursor is not None
    assert decode_cursor(cursor, "s", 1) == [2]
