"""JSON responses are encoded by orjson and read back exactly as Flask's own encoding would."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider

from app.core.http import JSONProvider


@dataclasses.dataclass
class Point:
    x: int
    y: int


SAMPLE = {
    "zeta": 1,
    "alpha": [1.5, None, True, "é ✓ 😀"],
    "when": datetime(2026, 11, 26, 12, 0, 1, tzinfo=UTC),
    "day": date(2026, 11, 26),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "amount": Decimal("1.10"),
    "point": Point(1, 2),
    7: "an int key",
}


def test_the_app_encodes_with_orjson(app: Flask) -> None:
    assert isinstance(app.json, JSONProvider)


def test_encoding_matches_flasks_own(app: Flask) -> None:
    reference = DefaultJSONProvider(app)
    reference.sort_keys = False
    with app.test_request_context():
        ours = app.json.dumps(SAMPLE)
        response = jsonify(SAMPLE)
    assert json.loads(ours) == json.loads(reference.dumps(SAMPLE))
    assert list(json.loads(ours)) == ["zeta", "alpha", "when", "day", "id", "amount", "point", "7"]
    assert json.loads(response.get_data()) == json.loads(reference.dumps(SAMPLE))
    assert response.mimetype == "application/json"
    assert response.get_data().endswith(b"}\n")
    assert "😀".encode() in response.get_data()  # UTF-8, not \\u escapes


def test_dumps_options_and_debug_use_flasks_encoder(app: Flask) -> None:
    assert app.json.dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a": 2, "b": 1}'
    app.debug = True
    try:
        with app.test_request_context():
            body = jsonify({"a": 1}).get_data(as_text=True)
    finally:
        app.debug = False
    assert body == '{\n  "a": 1\n}\n'  # Flask's indented debug output


def test_what_orjson_refuses_still_encodes(app: Flask) -> None:
    huge = {"n": 2**70}
    with app.test_request_context():
        assert json.loads(jsonify(huge).get_data()) == huge
    assert json.loads(app.json.dumps(huge)) == huge
