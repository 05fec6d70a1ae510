"""Schemas of the users domain."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.schemas.fields import (
    BodySchema,
    Name,
    PageQuerySchema,
    Pattern,
    StrictBoolean,
    Text,
    UTCTimestamp,
)

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"

username_field_options = {
    "validate": Pattern(
        USERNAME_PATTERN, error="3–32 characters: letters, digits, '_', '.' or '-'."
    ),
    "metadata": {"description": "3–32 of `[A-Za-z0-9_.-]`, unique regardless of case."},
}


class UserSchema(Schema):
    """UserPublic: what anyone signed in may see of a user."""

    id = fields.Integer(dump_only=True)
    username = fields.String(dump_only=True)
    display_name = fields.String(dump_only=True)
    created_at = UTCTimestamp(dump_only=True)


class UserPrivateSchema(UserSchema):
    """UserPrivate: the user themself and admins also see these."""

    email = fields.String(dump_only=True)
    is_admin = fields.Boolean(dump_only=True)
    is_active = fields.Boolean(dump_only=True)
    show_presence = fields.Boolean(
        dump_only=True,
        metadata={"description": "False: always `offline`, last seen never, to everyone else."},
    )


class UserUpdateSchema(BodySchema):
    """``PATCH /users/me``."""

    display_name = Name(validate=validate.Length(min=1, max=64))
    username = Text(**username_field_options)  # type: ignore[arg-type]
    show_presence = StrictBoolean(
        metadata={"description": "False: others see you `offline`, last seen never."}
    )


class UserDeleteSchema(BodySchema):
    """``DELETE /users/me``: the password confirms the deactivation."""

    password = Text(required=True, validate=validate.Length(min=1, max=128), load_only=True)


class UserSearchQuerySchema(PageQuerySchema):
    """``GET /users?q=``."""

    q = Text(
        required=True,
        strip=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Prefix of a username or display name (any case)."},
    )


class UserPageSchema(Schema):
    """A page of UserPublic."""

    items = fields.List(fields.Nested(UserSchema))
    next_cursor = fields.String(allow_none=True)


class UserPrivatePageSchema(Schema):
    """A page of UserPrivate (admins)."""

    items = fields.List(fields.Nested(UserPrivateSchema))
    next_cursor = fields.String(allow_none=True)


class AdminUserUpdateSchema(BodySchema):
    """``PATCH /admin/users/{id}``."""

    is_active = StrictBoolean()
    is_admin = StrictBoolean()
