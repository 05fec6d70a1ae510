"""Opaque keyset cursors, signed with the app's SECRET_KEY."""

from __future__ import annotations

import pytest
from flask import Flask

from app.core.errors import FieldError
from app.core.pagination import decode_cursor, encode_cursor, page_of


def test_round_trip(app: Flask) -> None:
    with app.app_context():
        cursor = encode_cursor(["bob", 7])
        assert decode_cursor(cursor, 2) == ["bob", 7]


@pytest.mark.parametrize("cursor", ["", ".", "abc", "abc.def", "eyJ4IjoxfQ.AAAA"])
def test_bad_cursors_are_rejected(app: Flask, cursor: str) -> None:
    with app.app_context(), pytest.raises(FieldError) as refused:
        decode_cursor(cursor, 1)
    assert refused.value.field == "cursor"


def test_cursor_from_another_key_is_rejected(app: Flask) -> None:
    with app.app_context():
        cursor = encode_cursor([1])
    app.config["SECRET_KEY"] = "another secret key, of another deployment"
    with app.app_context(), pytest.raises(FieldError):
        decode_cursor(cursor, 1)


def test_page_of(app: Flask) -> None:
    with app.app_context():
        assert page_of([1, 2], 2, lambda x: [x]) == ([1, 2], None)
        page, cursor = page_of([1, 2, 3], 2, lambda x: [x])
        assert page == [1, 2] and cursor is not None
        assert decode_cursor(cursor, 1) == [2]
