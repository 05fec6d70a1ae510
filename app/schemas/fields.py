"""Field types and base schemas shared by every domain's schemas."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.core.utils import iso_z

_SURROGATE = re.compile("[\ud800-\udfff]")


def reject_unsafe_text(value: str) -> None:
    """Refuse NUL characters and lone surrogates, which no database column can hold."""
    if "\x00" in value:
        raise ValidationError("NUL characters are not allowed.")
    if _SURROGATE.search(value):
        raise ValidationError("Invalid Unicode (lone surrogate).")


class Pattern(validate.Regexp):
    """A regular-expression check on the whole value.

    marshmallow's ``Regexp`` uses ``re.match``, where ``$`` also matches before a final newline:
    ``"alice"`` and a newline would pass ``^[a-z]+$``. This one matches the whole string. The
    pattern is written with ``^`` and ``$`` as usual, so the OpenAPI description shows it as a
    JSON Schema pattern that clients and test generators understand.
    """

    def __call__(self, value: Any) -> Any:
        """Return ``value`` when the pattern matches all of it; else raise ValidationError."""
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class Text(fields.String):
    """A string that is never NUL-laden or broken Unicode, optionally trimmed."""

    def __init__(self, *args: Any, strip: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strip = strip

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        reject_unsafe_text(text)
        return text.strip() if self.strip else text


#: Bidirectional embeddings, overrides and isolates: they make a name display as something else.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
#: C0 and C1 control characters (tab, newline and the rest) have no place in a name.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


class Name(Text):
    """A name shown to others (display names, group titles): trimmed, one line, no bidi tricks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("strip", True)
        super().__init__(*args, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if _CONTROLS.search(text):
            raise ValidationError("Control characters are not allowed.")
        if _BIDI_CONTROLS.search(text):
            raise ValidationError("Bidirectional control characters are not allowed.")
        return text


class Email(fields.Email):
    """An email address, trimmed and lower-cased, at most 254 characters."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Length(max=254))
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            reject_unsafe_text(value)
            value = value.strip().lower()
        return str(super()._deserialize(value, attr, data, **kwargs))


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``; ``"yes"``, ``1`` and friends are not booleans."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class UTCTimestamp(fields.DateTime):
    """ISO 8601 in UTC with a ``Z`` suffix and milliseconds: ``2026-11-26T10:15:00.123Z``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else iso_z(value)


class BodySchema(Schema):
    """Base of request-body schemas: unknown fields are an error (no mass assignment)."""

    class Meta:
        unknown = RAISE


#: Page cursors are base64url text and a signature, joined by a dot.
CURSOR_PATTERN = r"^[A-Za-z0-9_.-]*$"


class PageQuerySchema(Schema):
    """``?limit=&cursor=`` for keyset-paginated lists (unknown query parameters are ignored)."""

    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Page size, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT})."},
    )
    cursor = Text(
        load_default=None,
        validate=[
            validate.Length(max=512),
            Pattern(CURSOR_PATTERN, error="Not a cursor of this API."),
        ],
        metadata={"description": "The `next_cursor` of the previous page."},
    )
