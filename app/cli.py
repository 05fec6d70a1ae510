"""Parley's ``flask`` commands: users, seed data and maintenance."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from marshmallow import ValidationError

from app.core.errors import AppError
from app.schemas.auth_schema import RegisterSchema
from app.services import auth_service, user_service

users_cli = AppGroup("users", help="Manage user accounts.")
auth_cli = AppGroup("auth", help="Sessions and tokens.")

DEMO_PASSWORD = "parley-demo-password"
DEMO_USERS = [
    ("alice", "Alice Example", True),
    ("bob", "Bob Example", False),
    ("carol", "Carol Example", False),
    ("parleybot", "Parley Bot", False),
]


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _read_password() -> str:
    if _stdin_is_terminal():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@users_cli.command("create")
@click.argument("username")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--display-name", default=None, help="Defaults to the username.")
def create_user_command(username: str, email: str, admin: bool, display_name: str | None) -> None:
    """Create a user; the password is prompted for, or read from standard input."""
    password = _read_password()
    data = {"username": username, "email": email, "password": password}
    if display_name:
        data["display_name"] = display_name
    try:
        fields = RegisterSchema().load(data)
        user = user_service.create_user(**fields, is_admin=admin)
    except ValidationError as error:
        raise click.ClickException(f"invalid input: {error.messages}") from None
    except AppError as error:
        raise click.ClickException(error.message) from None
    role = "admin" if user.is_admin else "user"
    click.echo(f"created {role} {user.username} (id {user.id})")


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Create a few demo users (skipping any that exist) and print their logins."""
    for username, display_name, is_admin in DEMO_USERS:
        try:
            user_service.create_user(
                f"{username}@example.com",
                username,
                DEMO_PASSWORD,
                display_name,
                is_admin=is_admin,
            )
            state = "created"
        except AppError:
            state = "exists "
        role = " (admin)" if is_admin else ""
        click.echo(f"{state} login={username} password={DEMO_PASSWORD}{role}")


@auth_cli.command("prune")
def prune_command() -> None:
    """Delete expired and revoked sessions (safe to run from cron)."""
    removed = auth_service.prune_sessions()
    click.echo(f"pruned {removed} session(s)")


def register(app: Flask) -> None:
    """Attach the command groups to the app."""
    app.cli.add_command(users_cli)
    app.cli.add_command(auth_cli)
    app.cli.add_command(seed_command)
