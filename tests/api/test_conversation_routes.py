"""Conversations, members and read markers over HTTP."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.database import db
from app.models import Conversation, Member
from tests.factories import PASSWORD, Chat, UserFactory
from tests.helpers import assert_problem

URL = "/api/v1/conversations"
CONVERSATION_FIELDS = {
    "id",
    "kind",
    "title",
    "created_at",
    "created_by",
    "last_seq",
    "last_message",
    "last_activity_at",
    "my_role",
    "my_last_read_seq",
    "unread_count",
    "member_count",
}


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


class TestDirect:
    def test_create_then_get_the_same_one_from_either_side(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        created = client.post(
            URL, json={"kind": "direct", "member_ids": [bob.id]}, headers=alice.headers
        )
        assert created.status_code == 201
        body = created.get_json()
        assert set(body) == CONVERSATION_FIELDS
        assert body["kind"] == "direct" and body["title"] is None and body["member_count"] == 2
        assert body["my_role"] == "member" and body["created_by"] == alice.id
        assert body["last_seq"] == 0 and body["last_message"] is None and body["unread_count"] == 0
        assert created.headers["Location"].endswith(f"{URL}/{body['id']}")
        again = client.post(
            URL, json={"kind": "direct", "member_ids": [alice.id]}, headers=bob.headers
        )
        assert again.status_code == 200 and again.get_json()["id"] == body["id"]
        assert count(app, Conversation) == 1

    def test_notes_to_self(self, client: FlaskClient, users: UserFactory) -> None:
        alice = users.create("alice")
        body = client.post(
            URL, json={"kind": "direct", "member_ids": [alice.id]}, headers=alice.headers
        ).get_json()
        assert body["member_count"] == 1
        again = client.post(
            URL, json={"kind": "direct", "member_ids": [alice.id]}, headers=alice.headers
        )
        assert again.status_code == 200

    def test_pair_is_unique_in_the_database(self, app: Flask, users: UserFactory) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        with app.app_context():
            db.session.add(
                Conversation(kind="direct", direct_key=f"{alice.id}:{bob.id}", created_by=alice.id)
            )
            db.session.commit()
            db.session.add(
                Conversation(kind="direct", direct_key=f"{alice.id}:{bob.id}", created_by=bob.id)
            )
            with pytest.raises(sa.exc.IntegrityError):
                db.session.commit()
            db.session.rollback()

    @pytest.mark.parametrize(
        "body",
        [
            {"kind": "direct", "member_ids": []},
            {"kind": "direct", "member_ids": [1, 2]},
            {"kind": "direct", "member_ids": [424242]},
            {"kind": "direct", "member_ids": ["2"]},
            {"kind": "direct", "member_ids": [0]},
            {"kind": "direct", "member_ids": [2**70]},
            {"kind": "direct", "member_ids": [2], "title": "no"},
            {"kind": "channel", "member_ids": [2]},
            {"kind": "direct"},
            {"kind": "direct", "member_ids": [2], "id": 5},
        ],
    )
    def test_invalid_requests_are_422_and_create_nothing(
        self, app: Flask, client: FlaskClient, users: UserFactory, body: dict[str, object]
    ) -> None:
        alice = users.create("alice")
        users.create("bob", login=False)
        assert_problem(client.post(URL, json=body, headers=alice.headers), 422, "validation_error")
        assert count(app, Conversation) == 0

    def test_deactivated_user_is_422(self, client: FlaskClient, users: UserFactory) -> None:
        alice, gone = users.create("alice"), users.create("gone")
        client.delete("/api/v1/users/me", json={"password": PASSWORD}, headers=gone.headers)
        body = assert_problem(
            client.post(
                URL, json={"kind": "direct", "member_ids": [gone.id]}, headers=alice.headers
            ),
            422,
        )
        assert "member_ids" in body["errors"]["json"]


class TestGroups:
    def test_create_group(self, client: FlaskClient, users: UserFactory) -> None:
        alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
        response = client.post(
            URL,
            json={
                "kind": "group",
                "title": "  Trip planning ",
                "member_ids": [bob.id, carol.id, alice.id, bob.id],
            },
            headers=alice.headers,
        )
        assert response.status_code == 201
        body = response.get_json()
        assert (
            body["title"] == "Trip planning"
            and body["member_count"] == 3
            and body["my_role"] == "owner"
        )
        members = client.get(f"{URL}/{body['id']}/members", headers=bob.headers).get_json()["items"]
        assert {(m["user"]["username"], m["role"]) for m in members} == {
            ("alice", "owner"),
            ("bob", "member"),
            ("carol", "member"),
        }
        assert set(members[0]) == {"user", "role", "joined_at", "last_read_seq"}
        assert set(members[0]["user"]) == {"id", "username", "display_name", "created_at"}

    @pytest.mark.parametrize(
        "body",
        [
            {"kind": "group", "member_ids": []},
            {"kind": "group", "title": "", "member_ids": []},
            {"kind": "group", "title": "   ", "member_ids": []},
            {"kind": "group", "title": "t" * 201, "member_ids": []},
            {"kind": "group", "title": "ok", "member_ids": [424242]},
            {"kind": "group", "title": "ok", "member_ids": list(range(1, 502))},
            {"kind": "group", "title": "nul\u0000", "member_ids": []},
            {"kind": "group", "title": "ok", "member_ids": "1,2"},
        ],
    )
    def test_invalid_groups(
        self, app: Flask, client: FlaskClient, users: UserFactory, body: dict[str, object]
    ) -> None:
        alice = users.create("alice")
        assert_problem(client.post(URL, json=body, headers=alice.headers), 422, "validation_error")
        assert count(app, Conversation) == 0

    def test_groups_of_up_to_5000_members_500_ids_per_call(
        self, app: Flask, client: FlaskClient, users: UserFactory
    ) -> None:
        alice = users.create("alice")
        with app.app_context():
            from app.models import User

            db.session.add_all(
                User(
                    email=f"m{i}@x.io",
                    username=f"m{i}",
                    username_key=f"m{i}",
                    display_name="m",
                    password_hash="x",
                )
                for i in range(5000)
            )
            db.session.commit()
            ids = list(
                db.session.scalars(sa.select(User.id).where(User.id != alice.id).order_by(User.id))
            )
        too_many = client.post(
            URL,
            json={"kind": "group", "title": "big", "member_ids": ids[:501]},
            headers=alice.headers,
        )
        assert_problem(too_many, 422)
        ok = client.post(
            URL,
            json={"kind": "group", "title": "big", "member_ids": ids[:500]},
            headers=alice.headers,
        )
        assert ok.status_code == 201 and ok.get_json()["member_count"] == 501
        group_id = ok.get_json()["id"]
        members_url = f"{URL}/{group_id}/members"
        assert_problem(
            client.post(members_url, json={"user_ids": ids[500:1001]}, headers=alice.headers), 422
        )
        with app.app_context():  # grow it to 4,999 members without 4,000 events each
            from app.models import Member

            db.session.add_all(
                Member(conversation_id=group_id, user_id=uid, role="member")
                for uid in ids[500:4998]
            )
            db.session.commit()
        last = client.post(members_url, json={"user_ids": [ids[4998]]}, headers=alice.headers)
        assert last.status_code == 200 and len(last.get_json()["items"]) == 5000
        extra = client.post(members_url, json={"user_ids": [ids[4999]]}, headers=alice.headers)
        assert_problem(extra, 422)

    def test_rename_owner_only(self, client: FlaskClient, users: UserFactory, chat: Chat) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        group = chat.group(alice, bob)
        renamed = client.patch(
            f"{URL}/{group['id']}", json={"title": " New "}, headers=alice.headers
        )
        assert renamed.status_code == 200 and renamed.get_json()["title"] == "New"
        assert_problem(
            client.patch(f"{URL}/{group['id']}", json={"title": "Mine"}, headers=bob.headers),
            403,
            "forbidden",
        )
        assert chat.get(bob, group["id"])["title"] == "New"
        assert_problem(
            client.patch(f"{URL}/{group['id']}", json={"title": ""}, headers=alice.headers), 422
        )
        assert_problem(
            client.patch(
                f"{URL}/{group['id']}", json={"title": "x", "kind": "direct"}, headers=alice.headers
            ),
            422,
        )

    def test_direct_conversations_cannot_be_renamed_or_joined(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
        direct = chat.direct(alice, bob)
        assert_problem(
            client.patch(f"{URL}/{direct['id']}", json={"title": "x"}, headers=alice.headers), 409
        )
        assert_problem(
            client.post(
                f"{URL}/{direct['id']}/members",
                json={"user_ids": [carol.id]},
                headers=alice.headers,
            ),
            409,
        )
        assert_problem(
            client.delete(f"{URL}/{direct['id']}/members/{alice.id}", headers=alice.headers), 409
        )


class TestMembership:
    def test_add_members_owner_only_and_idempotent(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob, carol, dave = (users.create(n) for n in ("alice", "bob", "carol", "dave"))
        group = chat.group(alice, bob)
        chat.send(bob, group["id"], "before carol")
        added = client.post(
            f"{URL}/{group['id']}/members",
            json={"user_ids": [carol.id, bob.id]},
            headers=alice.headers,
        )
        assert added.status_code == 200
        assert {m["user"]["username"] for m in added.get_json()["items"]} == {
            "alice",
            "bob",
            "carol",
        }
        # A joiner sees the history, already read.
        joined = chat.get(carol, group["id"])
        assert joined["my_last_read_seq"] == 1 and joined["unread_count"] == 0
        again = client.post(
            f"{URL}/{group['id']}/members", json={"user_ids": [carol.id]}, headers=alice.headers
        )
        assert again.status_code == 200 and len(again.get_json()["items"]) == 3
        assert_problem(
            client.post(
                f"{URL}/{group['id']}/members", json={"user_ids": [dave.id]}, headers=bob.headers
            ),
            403,
        )
        assert_problem(
            client.post(
                f"{URL}/{group['id']}/members", json={"user_ids": [424242]}, headers=alice.headers
            ),
            422,
        )
        assert_problem(
            client.post(
                f"{URL}/{group['id']}/members", json={"user_ids": []}, headers=alice.headers
            ),
            422,
        )

    def test_leave_and_remove(self, client: FlaskClient, users: UserFactory, chat: Chat) -> None:
        alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
        group = chat.group(alice, bob, carol)
        assert_problem(
            client.delete(f"{URL}/{group['id']}/members/{carol.id}", headers=bob.headers), 403
        )
        assert (
            client.delete(f"{URL}/{group['id']}/members/{bob.id}", headers=bob.headers).status_code
            == 204
        )
        assert_problem(client.get(f"{URL}/{group['id']}", headers=bob.headers), 404)
        assert (
            client.delete(
                f"{URL}/{group['id']}/members/{carol.id}", headers=alice.headers
            ).status_code
            == 204
        )
        assert_problem(client.get(f"{URL}/{group['id']}/messages", headers=carol.headers), 404)
        assert_problem(
            client.delete(f"{URL}/{group['id']}/members/{carol.id}", headers=alice.headers), 404
        )
        assert chat.get(alice, group["id"])["member_count"] == 1

    def test_last_owner_leaving_hands_over_to_longest_standing_member(
        self, app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
        group = chat.group(alice, carol)
        client.post(
            f"{URL}/{group['id']}/members", json={"user_ids": [bob.id]}, headers=alice.headers
        )
        assert (
            client.delete(
                f"{URL}/{group['id']}/members/{alice.id}", headers=alice.headers
            ).status_code
            == 204
        )
        roles = {
            m["user"]["username"]: m["role"]
            for m in client.get(f"{URL}/{group['id']}/members", headers=bob.headers).get_json()[
                "items"
            ]
        }
        assert roles == {"carol": "owner", "bob": "member"}
        assert (
            client.delete(
                f"{URL}/{group['id']}/members/{carol.id}", headers=carol.headers
            ).status_code
            == 204
        )
        assert chat.get(bob, group["id"])["my_role"] == "owner"
        assert (
            client.delete(f"{URL}/{group['id']}/members/{bob.id}", headers=bob.headers).status_code
            == 204
        )
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Member)) == 0


class TestReadMarkers:
    def test_read_forward_only_and_clamped(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        for i in range(5):
            chat.send(bob, direct["id"], f"m{i}")
        assert chat.get(alice, direct["id"])["unread_count"] == 5
        read = client.post(f"{URL}/{direct['id']}/read", json={"seq": 3}, headers=alice.headers)
        assert read.get_json() == {"last_read_seq": 3, "unread_count": 2}
        back = client.post(f"{URL}/{direct['id']}/read", json={"seq": 1}, headers=alice.headers)
        assert back.get_json() == {"last_read_seq": 3, "unread_count": 2}
        clamped = client.post(f"{URL}/{direct['id']}/read", json={"seq": 99}, headers=alice.headers)
        assert clamped.get_json() == {"last_read_seq": 5, "unread_count": 0}
        zero = client.post(f"{URL}/{direct['id']}/read", json={"seq": 0}, headers=alice.headers)
        assert zero.get_json() == {"last_read_seq": 5, "unread_count": 0}

    def test_mark_unread_from_a_message(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        for i in range(4):
            chat.send(bob, direct["id"], f"m{i}")
        client.post(f"{URL}/{direct['id']}/read", json={"seq": 4}, headers=alice.headers)
        unread = client.post(f"{URL}/{direct['id']}/unread", json={"seq": 2}, headers=alice.headers)
        assert unread.get_json() == {"last_read_seq": 1, "unread_count": 3}
        assert chat.get(alice, direct["id"])["my_last_read_seq"] == 1
        beyond = client.post(
            f"{URL}/{direct['id']}/unread", json={"seq": 50}, headers=alice.headers
        )
        assert beyond.get_json() == {"last_read_seq": 4, "unread_count": 0}

    @pytest.mark.parametrize(
        "body", [{}, {"seq": -1}, {"seq": "3"}, {"seq": 1.5}, {"seq": 2**64}, {"seq": 1, "x": 1}]
    )
    def test_invalid_markers(
        self, client: FlaskClient, users: UserFactory, chat: Chat, body: dict[str, object]
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        assert_problem(
            client.post(f"{URL}/{direct['id']}/read", json=body, headers=alice.headers), 422
        )
        assert_problem(
            client.post(
                f"{URL}/{direct['id']}/unread",
                json=body | {"seq": 0} if "seq" not in body else body,
                headers=alice.headers,
            ),
            422,
        )

    def test_unread_count_ignores_own_and_deleted_messages(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob = users.create("alice"), users.create("bob")
        direct = chat.direct(alice, bob)
        chat.send(bob, direct["id"], "one")
        chat.send(bob, direct["id"], "two")
        chat.send(alice, direct["id"], "mine")  # moves alice's marker to 3
        chat.send(bob, direct["id"], "three")
        chat.send(bob, direct["id"], "four")
        client.delete(f"{URL}/{direct['id']}/messages/4", headers=bob.headers)
        view = chat.get(alice, direct["id"])
        assert view["my_last_read_seq"] == 3 and view["unread_count"] == 1
        assert view["last_message"]["seq"] == 5 and view["last_seq"] == 5
        assert chat.get(bob, direct["id"])["unread_count"] == 0


class TestListing:
    def test_most_recent_activity_first(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
        first = chat.direct(alice, bob)
        second = chat.direct(alice, carol)
        group = chat.group(alice, bob, carol)
        chat.send(bob, first["id"], "bump")
        items = client.get(URL, headers=alice.headers).get_json()["items"]
        assert [c["id"] for c in items] == [first["id"], group["id"], second["id"]]
        assert items[0]["last_message"]["body"] == "bump" and items[0]["unread_count"] == 1
        assert [c["id"] for c in client.get(URL, headers=carol.headers).get_json()["items"]] == [
            group["id"],
            second["id"],
        ]

    def test_paging_while_messages_arrive(
        self, client: FlaskClient, users: UserFactory, chat: Chat
    ) -> None:
        alice = users.create("alice")
        others = [users.create(f"friend{i}") for i in range(9)]
        conversations = [chat.direct(alice, other) for other in others]
        existing = {c["id"] for c in conversations}
        seen: list[int] = []
        cursor = None
        step = 0
        while True:
            query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
            page = client.get(URL + query, headers=alice.headers).get_json()
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            # Between pages: bump one not seen yet and one seen, and start a new conversation.
            unseen = [c for c in conversations if c["id"] not in seen]
            if unseen:
                chat.send(others[conversations.index(unseen[-1])], unseen[-1]["id"], "bump unseen")
            chat.send(
                others[conversations.index(next(c for c in conversations if c["id"] == seen[0]))],
                seen[0],
                "bump seen",
            )
            chat.direct(alice, users.create(f"late{step}"))
            step += 1
            if cursor is None:
                break
        assert len(seen) == len(set(seen)), seen
        assert existing <= set(seen)

    def test_bad_cursor_and_limits(self, client: FlaskClient, users: UserFactory) -> None:
        alice = users.create("alice")
        for query in ("?limit=0", "?limit=101", "?cursor=abc", "?cursor=W10.xyz"):
            assert_problem(client.get(URL + query, headers=alice.headers), 422)
        other_kind = client.get(
            "/api/v1/admin/users?limit=1", headers=users.create("root", admin=True).headers
        )
        assert other_kind.status_code == 200
