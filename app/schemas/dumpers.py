"""Fast serialisers compiled from the response schemas, which stay the one definition of a resource.

marshmallow walks its field objects for every value it dumps; for a page of 50 messages that
costs more than the database does. :func:`compile_dumper` reads a schema's fields once and
generates one function returning the same dict as ``schema.dump(data)``, in the same key order,
as a single dict expression (generated source compiled once, as :mod:`dataclasses` builds
``__init__``). A field added to the schema is in the dumper at the next start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import Schema, fields

from app.core.utils import iso_z
from app.schemas.fields import UTCTimestamp

Dumper = Callable[[Mapping[str, Any]], dict[str, Any]]

#: Field types whose values the rows already hold as JSON wants them: dumped as they are.
_AS_IS = (fields.Integer, fields.String, fields.Boolean)


def _timestamp_or_none(value: Any) -> str | None:
    return None if value is None else iso_z(value)


def _nested(dump: Dumper) -> Callable[[Any], dict[str, Any] | None]:
    return lambda value: None if value is None else dump(value)


def compile_dumper(schema: Schema) -> Dumper:
    """Return a function giving what ``schema.dump(data)`` gives for a mapping ``data``.

    Supported fields: Integer, String and Boolean (values used as they are), UTCTimestamp, and
    Nested schemas made of these; any other field type is a TypeError here, at start-up.
    """
    helpers: dict[str, Any] = {}
    items = []
    for name, field in schema.dump_fields.items():
        key = field.data_key or name
        value = f"data[{(field.attribute or name)!r}]"
        if isinstance(field, UTCTimestamp):
            helper = "timestamp_or_none" if field.allow_none else "timestamp"
            helpers[helper] = _timestamp_or_none if field.allow_none else iso_z
            items.append(f"{key!r}: {helper}({value})")
        elif isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
            helper = f"nested_{name}"
            helpers[helper] = _nested(compile_dumper(field.schema))
            items.append(f"{key!r}: {helper}({value})")
        elif isinstance(field, _AS_IS):
            items.append(f"{key!r}: {value}")
        else:
            raise TypeError(f"{type(schema).__name__}.{name}: no fast dump for {type(field)}")
    source = "def dump(data):\n    return {" + ", ".join(items) + "}\n"
    namespace: dict[str, Any] = dict(helpers)
    exec(compile(source, f"<dumper of {type(schema).__name__}>", "exec"), namespace)  # noqa: S102
    dump: Dumper = namespace["dump"]
    return dump
