"""flask data transfer / export / import: a deployment's data moves between databases and
through an archive with every API read unchanged (between SQLite files in the SQLite pass, between
SQLite and PostgreSQL in the PostgreSQL pass)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask_migrate
import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from app.database import db
from tests.conftest import make_app
from tests.factories import PASSWORD, ApiUser, Chat, UserFactory


@pytest.fixture
def database_factory(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """Create fresh, empty databases of the suite's kind: SQLite files, or PostgreSQL databases
    on the test server (dropped afterwards). The SQLite pass moves data between SQLite files, the
    PostgreSQL pass between SQLite and PostgreSQL."""
    if not database_url.startswith("postgresql"):
        files = (tmp_path / f"target-{i}.db" for i in itertools.count())
        yield lambda: f"sqlite:///{next(files)}"
        return
    url = sa.make_url(database_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    created: list[str] = []

    def create() -> str:
        name = f"parley_move_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return url.set(database=name).render_as_string(hide_password=False)

    yield create
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated_app(url: str) -> Flask:
    app = make_app(url)
    with app.app_context():
        flask_migrate.upgrade()
    return app


def dispose(app: Flask) -> None:
    with app.app_context():
        db.engine.dispose()


def seed(app: Flask) -> list[ApiUser]:
    """Users, sessions, conversations, edited and deleted messages, emoji, read markers."""
    client = app.test_client()
    users, chat = UserFactory(app, client), Chat(client)
    alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
    users.login(alice, user_agent="second device")
    direct = chat.direct(alice, bob)["id"]
    group = chat.group(alice, bob, carol, title="Trip 🏔️ planning")["id"]
    for i, text in enumerate(
        ["héllo", "𝓯𝓪𝓷𝓬𝔂 4-byte 😀", "tab\tand\nnewline", "RTL \u202eevil", "plain"]
    ):
        chat.send([alice, bob, carol][i % 3], group, text)
        chat.send([alice, bob][i % 2], direct, f"direct {i} ✓")
    client.patch(
        f"/api/v1/conversations/{group}/messages/2", json={"body": "edited 🎉"}, headers=bob.headers
    )
    client.delete(f"/api/v1/conversations/{group}/messages/3", headers=carol.headers)
    client.post(f"/api/v1/conversations/{group}/read", json={"seq": 2}, headers=carol.headers)
    client.post(f"/api/v1/conversations/{direct}/unread", json={"seq": 2}, headers=alice.headers)
    return [alice, bob, carol]


def api_reads(app: Flask, people: list[ApiUser]) -> dict[str, Any]:
    """Every read a client makes, per user, with tokens freshly issued by logging in."""
    client = app.test_client()
    reads: dict[str, Any] = {}
    for person in people:
        login = client.post(
            "/api/v1/auth/login", json={"login": person.username, "password": PASSWORD}
        )
        assert login.status_code == 200, "old passwords must keep working"
        headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
        mine: dict[str, Any] = {"me": client.get("/api/v1/users/me", headers=headers).get_json()}
        conversations = client.get("/api/v1/conversations", headers=headers).get_json()
        mine["conversations"] = conversations
        for item in conversations["items"]:
            cid = item["id"]
            mine[f"members {cid}"] = client.get(
                f"/api/v1/conversations/{cid}/members", headers=headers
            ).get_json()
            mine[f"messages {cid}"] = client.get(
                f"/api/v1/conversations/{cid}/messages?limit=100", headers=headers
            ).get_json()
        mine["search"] = client.get("/api/v1/users?q=a", headers=headers).get_json()
        reads[person.username] = mine
    # The cursor of a list is opaque and carries the time of the request; compare the rest.
    for mine in reads.values():
        mine["conversations"].pop("next_cursor")
    return reads


def test_transfer_there_and_back(tmp_path: Path, database_factory: Any) -> None:
    source = migrated_app(f"sqlite:///{tmp_path / 'source.db'}")
    people = seed(source)
    expected = api_reads(source, people)
    target_url = database_factory()
    target = migrated_app(target_url)
    dispose(target)

    result = source.test_cli_runner().invoke(
        args=[
            "data",
            "transfer",
            "--source",
            str(source.config["SQLALCHEMY_DATABASE_URI"]),
            "--target",
            target_url,
            "--batch-size",
            "3",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    dispose(source)
    assert api_reads(target, people) == expected

    # New rows continue the sequences: the next message seq, fresh ids that do not collide.
    client = target.test_client()
    users, chat = UserFactory(target, client), Chat(client)
    alice = people[0]
    users.login(alice)
    group = next(
        c
        for c in client.get("/api/v1/conversations", headers=alice.headers).get_json()["items"]
        if c["kind"] == "group"
    )
    sent = chat.send(alice, group["id"], "after the move")
    assert sent["seq"] == group["last_seq"] + 1
    newcomer = users.create("newcomer", login=False)
    assert newcomer.id == 4

    # And back to a fresh SQLite file.
    back_url = f"sqlite:///{tmp_path / 'back.db'}"
    back = migrated_app(back_url)
    dispose(back)
    result = target.test_cli_runner().invoke(
        args=["data", "transfer", "--source", target_url, "--target", back_url]
    )
    assert result.exit_code == 0, result.output
    dispose(target)
    assert api_reads(back, people) == api_reads(target, people)
    dispose(back)


def test_export_import_round_trip(tmp_path: Path, database_factory: Any) -> None:
    source = migrated_app(database_factory())
    people = seed(source)
    expected = api_reads(source, people)
    archive = tmp_path / "parley.jsonl.gz"
    result = source.test_cli_runner().invoke(args=["data", "export", str(archive)])
    assert result.exit_code == 0, result.output
    assert "exported" in result.output
    dispose(source)
    restored_url = f"sqlite:///{tmp_path / 'restored.db'}"
    restored = migrated_app(restored_url)
    result = restored.test_cli_runner().invoke(args=["data", "import", str(archive)])
    assert result.exit_code == 0, result.output
    assert api_reads(restored, people) == expected
    # Importing again refuses (the target holds data), unless forced.
    again = restored.test_cli_runner().invoke(args=["data", "import", str(archive)])
    assert again.exit_code != 0 and "already holds data" in again.output
    forced = restored.test_cli_runner().invoke(args=["data", "import", str(archive), "--force"])
    assert forced.exit_code == 0, forced.output
    dispose(restored)


def table_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        counts = {
            n: conn.execute(sa.text(f"SELECT count(*) FROM {n}")).scalar() or 0 for n in names
        }
    engine.dispose()
    return counts


def test_refusals_leave_the_target_untouched(tmp_path: Path, database_factory: Any) -> None:
    source = migrated_app(f"sqlite:///{tmp_path / 'source.db'}")
    seed(source)
    source_url = str(source.config["SQLALCHEMY_DATABASE_URI"])
    runner = source.test_cli_runner()

    busy_url = database_factory()
    busy = migrated_app(busy_url)
    UserFactory(busy, busy.test_client()).create("occupant", login=False)
    dispose(busy)
    before = table_counts(busy_url)
    refused = runner.invoke(args=["data", "transfer", "--source", source_url, "--target", busy_url])
    assert refused.exit_code != 0 and "already holds data" in refused.output
    assert table_counts(busy_url) == before

    bare_url = database_factory()
    refused = runner.invoke(args=["data", "transfer", "--source", source_url, "--target", bare_url])
    assert refused.exit_code != 0 and "not migrated" in refused.output
    assert table_counts(bare_url) == {}

    behind_url = database_factory()
    behind = make_app(behind_url)
    with behind.app_context():
        flask_migrate.upgrade(revision="0003")
        db.engine.dispose()
    refused = runner.invoke(
        args=["data", "transfer", "--source", source_url, "--target", behind_url]
    )
    assert refused.exit_code != 0 and "revision" in refused.output
    assert sum(table_counts(behind_url).values()) == 1  # only alembic_version's row

    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(b"not gzip at all")
    fresh = migrated_app(database_factory())
    result = fresh.test_cli_runner().invoke(args=["data", "import", str(damaged)])
    assert result.exit_code != 0
    dispose(fresh)
    dispose(source)
