"""Parley's ``flask`` commands: users, seed data and maintenance."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from marshmallow import ValidationError

from app.core.errors import AppError
from app.schemas.auth_schema import RegisterSchema
from app.services import (
    auth_service,
    conversation_service,
    data_service,
    event_service,
    message_service,
    user_service,
)

users_cli = AppGroup("users", help="Manage user accounts.")
events_cli = AppGroup("events", help="The event log.")
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


DEMO_DIRECT = [
    ("alice", "Hi Bob! Are we still on for Saturday?"),
    ("bob", "Yes! 10am at the station."),
    ("alice", "Perfect, see you there."),
]
DEMO_GROUP = [
    ("alice", "Welcome to trip planning, everyone."),
    ("carol", "I found a cabin by the lake, 3 nights."),
    ("bob", "Sounds great. What does it cost?"),
    ("parleybot", "Reminder: the deposit is due Friday."),
]


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Create demo users, a direct chat and a group (skipping what exists); print the logins."""
    ids: dict[str, int] = {}
    for username, display_name, is_admin in DEMO_USERS:
        try:
            user = user_service.create_user(
                f"{username}@example.com",
                username,
                DEMO_PASSWORD,
                display_name,
                is_admin=is_admin,
            )
            state = "created"
        except AppError:
            user = user_service.find_user(username)
            state = "exists "
        ids[username] = user.id
        role = " (admin)" if is_admin else ""
        click.echo(f"{state} login={username} password={DEMO_PASSWORD}{role}")
    direct, _ = conversation_service.start_direct(ids["alice"], ids["bob"])
    _seed_messages(direct["id"], DEMO_DIRECT, ids, "direct")
    group = conversation_service.find_group(ids["alice"], "Trip planning") or (
        conversation_service.create_group(
            ids["alice"], "Trip planning", [ids[name] for name in ("bob", "carol", "parleybot")]
        )
    )
    _seed_messages(group["id"], DEMO_GROUP, ids, "group")
    click.echo(f"conversations: direct #{direct['id']} (alice, bob), group #{group['id']}")


def _seed_messages(
    conversation_id: int, script: list[tuple[str, str]], ids: dict[str, int], tag: str
) -> None:
    # client_id makes re-seeding a no-op instead of a second copy of each message.
    for number, (sender, body) in enumerate(script, start=1):
        message_service.send_message(conversation_id, ids[sender], body, f"seed-{tag}-{number}")


@auth_cli.command("prune")
def prune_command() -> None:
    """Delete expired and revoked sessions (safe to run from cron)."""
    removed = auth_service.prune_sessions()
    click.echo(f"pruned {removed} session(s)")


@events_cli.command("prune")
@click.option("--days", type=int, default=None, help="Retention in days (default: configured).")
def prune_events_command(days: int | None) -> None:
    """Delete events older than the retention window (safe to run from cron)."""
    from flask import current_app

    retention = days if days is not None else int(current_app.config["EVENTS_RETENTION_DAYS"])
    removed = event_service.prune(retention)
    click.echo(f"pruned {removed} event(s) older than {retention} day(s)")


data_cli = AppGroup("data", help="Move, back up and restore the whole database.")


def _progress_bar(label: str) -> Any:
    """Draw a progress bar per table on stderr as batches move."""
    counts: dict[str, int] = {}

    def report(table: str, rows: int, total: int) -> None:
        counts[table] = done = counts.get(table, 0) + rows
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        line = f"\r{label} {table:<22} [{bar:<30}] {done}/{total} rows"
        click.echo(line, nl=share >= 1, err=True)

    return report


def _print_checks(checks: list[data_service.TableCheck]) -> None:
    click.echo("", err=True)
    click.echo(f"{'table':<24}{'source':>12}{'target':>12}  checksum")
    for check in checks:
        state = "ok" if check.ok else "MISMATCH"
        click.echo(f"{check.name:<24}{check.source_rows:>12}{check.target_rows:>12}  {state}")
    if not all(check.ok for check in checks):
        raise click.ClickException("verification failed: the target differs from the source")
    click.echo("verified: every table has the same rows on both sides")


def _run(action: Any) -> Any:
    try:
        return action()
    except data_service.DataMoveError as error:
        raise click.ClickException(error.message) from None


@data_cli.command("transfer")
@click.option("--source", required=True, help="Database URL to copy from.")
@click.option("--target", required=True, help="Database URL to copy to (migrated, empty).")
@click.option("--force", is_flag=True, help="Replace whatever the target holds.")
@click.option("--batch-size", default=5000, show_default=True, help="Rows per batch.")
def transfer_command(source: str, target: str, force: bool, batch_size: int) -> None:
    """Copy every table from one database to another (SQLite <-> PostgreSQL), then verify."""
    checks = _run(
        lambda: data_service.transfer(
            source, target, force=force, batch=batch_size, progress=_progress_bar("copying")
        )
    )
    _print_checks(checks)


@data_cli.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--database", default=None, help="Database URL (default: the app's).")
@click.option("--batch-size", default=5000, show_default=True)
def export_command(path: Path, database: str | None, batch_size: int) -> None:
    """Write a portable gzipped JSON-lines archive of the whole database."""
    from flask import current_app

    url = database or current_app.config["SQLALCHEMY_DATABASE_URI"]
    counts = _run(
        lambda: data_service.export_archive(
            url, path, batch=batch_size, progress=_progress_bar("exporting")
        )
    )
    click.echo("", err=True)
    click.echo(f"exported {sum(counts.values())} rows from {len(counts)} tables to {path}")


@data_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--database", default=None, help="Database URL (default: the app's).")
@click.option("--force", is_flag=True, help="Replace whatever the database holds.")
@click.option("--batch-size", default=5000, show_default=True)
def import_command(path: Path, database: str | None, force: bool, batch_size: int) -> None:
    """Load an archive made by `flask data export` into a migrated database, then verify."""
    from flask import current_app

    url = database or current_app.config["SQLALCHEMY_DATABASE_URI"]
    checks = _run(
        lambda: data_service.import_archive(
            url, path, force=force, batch=batch_size, progress=_progress_bar("importing")
        )
    )
    _print_checks(checks)


def register(app: Flask) -> None:
    """Attach the command groups to the app."""
    app.cli.add_command(users_cli)
    app.cli.add_command(events_cli)
    app.cli.add_command(data_cli)
    app.cli.add_command(auth_cli)
    app.cli.add_command(seed_command)
