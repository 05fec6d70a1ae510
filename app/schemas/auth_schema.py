"""Schemas of the auth domain."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from app.schemas.fields import BodySchema, Email, Name, Text, UTCTimestamp
from app.schemas.user_schema import username_field_options

PASSWORD_RULE = validate.Length(min=12, max=128, error="Between 12 and 128 characters.")


class RegisterSchema(BodySchema):
    """``POST /auth/register``."""

    email = Email(required=True, metadata={"description": "Stored lower-cased; at most 254."})
    username = Text(required=True, **username_field_options)  # type: ignore[arg-type]
    password = Text(required=True, load_only=True, validate=PASSWORD_RULE)
    display_name = Name(validate=validate.Length(min=1, max=64))


class LoginSchema(BodySchema):
    """``POST /auth/login``: ``login`` is an email or a username."""

    login = Text(required=True, validate=validate.Length(min=1, max=254))
    password = Text(required=True, load_only=True, validate=validate.Length(min=1, max=128))


class TokenRequestSchema(Schema):
    """``POST /auth/token``: an RFC 6749 form; unknown parameters are ignored, as OAuth2 asks."""

    class Meta:
        unknown = EXCLUDE

    grant_type = Text(required=True, validate=validate.OneOf(["password", "refresh_token"]))
    username = Text(validate=validate.Length(min=1, max=254))
    password = Text(load_only=True, validate=validate.Length(min=1, max=128))
    refresh_token = Text(validate=validate.Length(min=1, max=512))
    scope = Text(metadata={"description": "Accepted and ignored."})
    client_id = Text(metadata={"description": "Accepted and ignored."})


class RefreshSchema(BodySchema):
    """``POST /auth/refresh``."""

    refresh_token = Text(required=True, validate=validate.Length(min=1, max=512))


class TokenPairSchema(Schema):
    """Tokens issued by login, token and refresh."""

    access_token = fields.String(metadata={"description": "JWT, valid `expires_in` seconds."})
    refresh_token = fields.String(metadata={"description": "Opaque; single use."})
    token_type = fields.String(metadata={"description": "Always `Bearer`."})
    expires_in = fields.Integer()


class PasswordChangeSchema(BodySchema):
    """``POST /auth/password``."""

    current_password = Text(required=True, load_only=True, validate=validate.Length(min=1, max=128))
    new_password = Text(required=True, load_only=True, validate=PASSWORD_RULE)


class SessionSchema(Schema):
    """One of the caller's login sessions."""

    id = fields.Integer()
    created_at = UTCTimestamp()
    last_used_at = UTCTimestamp()
    user_agent = fields.String(allow_none=True)
    current = fields.Boolean()


class SessionListSchema(Schema):
    """The caller's live sessions."""

    items = fields.List(fields.Nested(SessionSchema))


class PasswordResetRequestSchema(BodySchema):
    """``POST /auth/password-reset``."""

    email = Email(required=True)


class PasswordResetConfirmSchema(BodySchema):
    """``POST /auth/password-reset/confirm``."""

    token = Text(required=True, validate=validate.Length(min=1, max=512))
    new_password = Text(required=True, load_only=True, validate=PASSWORD_RULE)


class AcceptedSchema(Schema):
    """The reset request was taken."""

    status = fields.String(metadata={"description": "Always `accepted`."})
