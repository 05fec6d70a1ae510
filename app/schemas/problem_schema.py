"""The error body of every operation, as the OpenAPI description shows it."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class ProblemSchema(Schema):
    """RFC 9457 problem details (``application/problem+json``), with Parley's ``code``."""

    class Meta:
        unknown = INCLUDE  # some problems add members, e.g. /readyz names the failing part

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"example": "Not Found"})
    status = fields.Integer(required=True, metadata={"example": 404})
    detail = fields.String(required=True)
    code = fields.String(required=True, metadata={"example": "not_found"})
    request_id = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(),
        metadata={"description": "422 only: messages by location (`json`, `query`) and field."},
    )
