"""Messages over HTTP: send, idempotency, history, edit and delete."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.database import db
from app.models import Message
from tests.factories import Chat, UserFactory
from tests.helpers import assert_problem

MESSAGE_FIELDS = {
    "id",
    "conversation_id",
    "seq",
    "sender_id",
    "body",
    "client_id",
    "created_at",
    "edited_at",
    "deleted",
}


def url(conversation_id: int, suffix: str = "") -> str:
    return f"/api/v1/conversations/{conversation_id}/messages{suffix}"


def stored(app: Flask) -> list[tuple[int, int, str | None]]:
    with app.app_context():
        return [
            tuple(r)
            for r in db.session.execute(
                sa.select(Message.conversation_id, Message.seq, Message.body).order_by(Message.id)
            )
        ]  # type: ignore[misc]


class TestSend:
    def test_send_numbers_messages_and_moves_own_marker(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        response = client.post(url(direct["id"]), json={"body": "  hello  "}, headers=alice.headers)
        assert response.status_code == 201
        message = response.get_json()
        assert set(message) == MESSAGE_FIELDS
        assert (
            message["seq"] == 1 and message["body"] == "hello" and message["sender_id"] == alice.id
        )
        assert (
            message["client_id"] is None
            and message["edited_at"] is None
            and message["deleted"] is False
        )
        assert response.headers["Location"].endswith(url(direct["id"], "/1"))
        assert [chat.send(bob, direct["id"])["seq"] for _ in range(3)] == [2, 3, 4]
        view = chat.get(alice, direct["id"])
        assert view["last_seq"] == 4 and view["unread_count"] == 3 and view["my_last_read_seq"] == 1
        assert chat.get(bob, direct["id"])["my_last_read_seq"] == 4

    def test_seq_is_per_conversation(self, users: UserFactory, chat: Chat) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        one, two = chat.direct(alice, bob), chat.group(alice, bob)
        assert chat.send(alice, one["id"])["seq"] == 1
        assert chat.send(alice, two["id"])["seq"] == 1
        assert chat.send(bob, one["id"])["seq"] == 2

    def test_client_id_makes_the_send_idempotent(
        self, app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        first = client.post(
            url(direct["id"]), json={"body": "hi", "client_id": "c-1"}, headers=alice.headers
        )
        assert first.status_code == 201
        retry = client.post(
            url(direct["id"]), json={"body": " hi ", "client_id": "c-1"}, headers=alice.headers
        )
        assert retry.status_code == 200 and retry.get_json() == first.get_json()
        changed = client.post(
            url(direct["id"]), json={"body": "bye", "client_id": "c-1"}, headers=alice.headers
        )
        assert_problem(changed, 409, "conflict")
        # The key belongs to the sender: bob may use the same one.
        theirs = client.post(
            url(direct["id"]), json={"body": "yo", "client_id": "c-1"}, headers=bob.headers
        )
        assert theirs.status_code == 201 and theirs.get_json()["seq"] == 2
        assert stored(app) == [(direct["id"], 1, "hi"), (direct["id"], 2, "yo")]

    def test_retry_of_a_deleted_message_returns_the_tombstone(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        chat.send(alice, direct["id"], "oops", client_id="k")
        client.delete(url(direct["id"], "/1"), headers=alice.headers)
        retry = client.post(
            url(direct["id"]), json={"body": "oops", "client_id": "k"}, headers=alice.headers
        )
        assert retry.status_code == 200 and retry.get_json()["deleted"] is True

    def test_retry_of_an_edited_message_returns_it_as_edited(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        """Once edited, the original body is gone: a retry gets the message as it now stands."""
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        chat.send(alice, direct["id"], "draft", client_id="k")
        client.patch(url(direct["id"], "/1"), json={"body": "final"}, headers=alice.headers)
        retry = client.post(
            url(direct["id"]), json={"body": "draft", "client_id": "k"}, headers=alice.headers
        )
        assert retry.status_code == 200
        assert retry.get_json()["seq"] == 1 and retry.get_json()["body"] == "final"
        assert retry.get_json()["edited_at"] is not None
        assert chat.get(alice, direct["id"])["last_seq"] == 1  # nothing new stored

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"body": ""},
            {"body": "   "},
            {"body": "x" * 10_001},
            {"body": 5},
            {"body": None},
            {"body": "a\u0000b"},
            {"body": "ok", "client_id": ""},
            {"body": "ok", "client_id": "c" * 65},
            {"body": "ok", "seq": 9},
            {"body": "ok", "sender_id": 1},
        ],
    )
    def test_invalid_messages_store_nothing(
        self,
        app: Flask,
        client: FlaskClient,
        users: UserFactory,
        chat: Chat,
        body: dict[str, object],
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        assert_problem(client.post(url(direct["id"]), json=body, headers=alice.headers), 422)
        assert stored(app) == [] and chat.get(alice, direct["id"])["last_seq"] == 0

    def test_ten_thousand_characters_after_trimming(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        response = client.post(
            url(direct["id"]), json={"body": "  " + "é" * 10_000 + "  "}, headers=alice.headers
        )
        assert response.status_code == 201 and len(response.get_json()["body"]) == 10_000


class TestHistory:
    @pytest.fixture
    def conversation(self, users: UserFactory, chat: Chat) -> tuple[int, dict[str, str]]:
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        for i in range(1, 26):
            chat.send(alice if i % 2 else bob, direct["id"], f"m{i}")
        return direct["id"], alice.headers

    def _seqs(
        self, client: FlaskClient, conversation: tuple[int, dict[str, str]], query: str
    ) -> tuple[list[int], bool]:
        cid, headers = conversation
        body = client.get(url(cid, query), headers=headers).get_json()
        return [m["seq"] for m in body["items"]], body["has_more"]

    def test_newest_page_by_default(
        self, client: FlaskClient, conversation: tuple[int, dict[str, str]]
    ) -> None:
        assert self._seqs(client, conversation, "") == (list(range(6, 26)), True)
        assert self._seqs(client, conversation, "?limit=100") == (list(range(1, 26)), False)

    def test_before_and_after(
        self, client: FlaskClient, conversation: tuple[int, dict[str, str]]
    ) -> None:
        assert self._seqs(client, conversation, "?before=6&limit=3") == ([3, 4, 5], True)
        assert self._seqs(client, conversation, "?before=4&limit=3") == ([1, 2, 3], False)
        assert self._seqs(client, conversation, "?after=20&limit=3") == ([21, 22, 23], True)
        assert self._seqs(client, conversation, "?after=22&limit=3") == ([23, 24, 25], False)
        assert self._seqs(client, conversation, "?after=0&limit=2") == ([1, 2], True)
        assert self._seqs(client, conversation, "?after=10&before=15&limit=10") == (
            [11, 12, 13, 14],
            False,
        )
        assert self._seqs(client, conversation, "?after=99") == ([], False)

    def test_paging_backwards_while_messages_arrive(
        self,
        client: FlaskClient,
        users: UserFactory,
        chat: Chat,
        conversation: tuple[int, dict[str, str]],
    ) -> None:
        cid, headers = conversation
        page = client.get(url(cid, "?limit=4"), headers=headers).get_json()
        seen = [m["seq"] for m in page["items"]]
        while page["has_more"]:
            chat.client.post(url(cid), json={"body": "new"}, headers=headers)
            page = client.get(url(cid, f"?limit=4&before={seen[0]}"), headers=headers).get_json()
            seen = [m["seq"] for m in page["items"]] + seen
        assert seen == list(range(1, 26))

    @pytest.mark.parametrize(
        "query",
        ["?limit=0", "?limit=101", "?before=0", "?after=-1", "?before=x", f"?after={2**64}"],
    )
    def test_bad_queries(
        self, client: FlaskClient, conversation: tuple[int, dict[str, str]], query: str
    ) -> None:
        cid, headers = conversation
        assert_problem(client.get(url(cid, query), headers=headers), 422)

    def test_get_one(self, client: FlaskClient, conversation: tuple[int, dict[str, str]]) -> None:
        cid, headers = conversation
        assert client.get(url(cid, "/7"), headers=headers).get_json()["body"] == "m7"
        assert_problem(client.get(url(cid, "/26"), headers=headers), 404)
        assert_problem(client.get(url(cid, "/0"), headers=headers), 404)


class TestEditAndDelete:
    def test_edit_by_sender_only(self, client: FlaskClient, users: UserFactory, chat: Chat) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        group = chat.group(alice, bob)
        chat.send(bob, group["id"], "draft")
        edited = client.patch(url(group["id"], "/1"), json={"body": " final "}, headers=bob.headers)
        assert edited.status_code == 200
        body = edited.get_json()
        assert body["body"] == "final" and body["edited_at"] is not None and body["seq"] == 1
        assert_problem(
            client.patch(
                url(group["id"], "/1"), json={"body": "owner edit"}, headers=alice.headers
            ),
            403,
        )
        assert_problem(
            client.patch(url(group["id"], "/2"), json={"body": "x"}, headers=bob.headers), 404
        )
        assert_problem(
            client.patch(url(group["id"], "/1"), json={"body": ""}, headers=bob.headers), 422
        )

    def test_delete_leaves_a_tombstone(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
        group = chat.group(alice, bob, carol)
        for who in (bob, carol, bob):
            chat.send(who, group["id"])
        assert_problem(client.delete(url(group["id"], "/2"), headers=bob.headers), 403)
        assert client.delete(url(group["id"], "/1"), headers=bob.headers).status_code == 204
        assert (
            client.delete(url(group["id"], "/2"), headers=alice.headers).status_code == 204
        )  # owner
        assert (
            client.delete(url(group["id"], "/2"), headers=alice.headers).status_code == 204
        )  # again: no-op
        tomb = client.get(url(group["id"], "/1"), headers=carol.headers).get_json()
        assert tomb["deleted"] is True and tomb["body"] is None and tomb["seq"] == 1
        history = client.get(url(group["id"]), headers=carol.headers).get_json()["items"]
        assert [m["seq"] for m in history] == [1, 2, 3] and [m["deleted"] for m in history] == [
            True,
            True,
            False,
        ]
        assert_problem(
            client.patch(url(group["id"], "/1"), json={"body": "revive"}, headers=bob.headers), 409
        )
        assert chat.send(carol, group["id"])["seq"] == 4
        assert_problem(client.delete(url(group["id"], "/9"), headers=alice.headers), 404)

    def test_direct_conversation_has_no_owner_to_delete_others(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        chat.send(bob, direct["id"])
        assert_problem(client.delete(url(direct["id"], "/1"), headers=alice.headers), 403)
