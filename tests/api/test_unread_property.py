"""Random mixes of send, edit, delete, read, mark-unread, add and remove member: after every step,
each user's ``unread_count`` and ``last_message`` from the API equal a brute-force recount."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.factories import ApiUser, Chat, UserFactory

_names = itertools.count()


@dataclass
class ModelMessage:
    seq: int
    sender: int
    body: str | None
    deleted: bool = False


@dataclass
class ModelConversation:
    id: int
    kind: str
    members: dict[int, int]  # user id -> last_read_seq
    roles: dict[int, str]
    joined: dict[int, tuple[int, int]]  # user id -> (join order, user id)
    messages: list[ModelMessage] = field(default_factory=list)

    def unread(self, user_id: int) -> int:
        marker = self.members[user_id]
        return sum(
            1 for m in self.messages if m.seq > marker and m.sender != user_id and not m.deleted
        )


def build_machine(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> type[RuleBasedStateMachine]:
    class Conversations(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            run = next(_names)
            self.users: list[ApiUser] = [users.create(f"p{run}u{i}") for i in range(4)]
            u = self.users
            group = chat.group(u[0], u[1], u[2], title="property")
            direct = chat.direct(u[0], u[1])
            self.order = itertools.count(1)
            start = next(self.order)
            self.convs = [
                ModelConversation(
                    group["id"],
                    "group",
                    {x.id: 0 for x in u[:3]},
                    {u[0].id: "owner", u[1].id: "member", u[2].id: "member"},
                    {x.id: (start, x.id) for x in u[:3]},
                ),
                ModelConversation(
                    direct["id"],
                    "direct",
                    {u[0].id: 0, u[1].id: 0},
                    {u[0].id: "member", u[1].id: "member"},
                    {u[0].id: (start, u[0].id), u[1].id: (start, u[1].id)},
                ),
            ]
            self.bodies = itertools.count()

        def _path(self, conv: ModelConversation, suffix: str = "") -> str:
            return f"/api/v1/conversations/{conv.id}{suffix}"

        @rule(who=st.integers(0, 3), which=st.integers(0, 1))
        def send(self, who: int, which: int) -> None:
            user, conv = self.users[who], self.convs[which]
            body = f"b{next(self.bodies)}"
            response = client.post(
                self._path(conv, "/messages"), json={"body": body}, headers=user.headers
            )
            if user.id not in conv.members:
                assert response.status_code == 404
                return
            assert response.status_code == 201, response.get_json()
            seq = len(conv.messages) + 1
            assert response.get_json()["seq"] == seq
            conv.messages.append(ModelMessage(seq, user.id, body))
            conv.members[user.id] = seq

        @rule(who=st.integers(0, 3), which=st.integers(0, 1), pick=st.integers(0, 40))
        def edit(self, who: int, which: int, pick: int) -> None:
            user, conv = self.users[who], self.convs[which]
            seq = pick % (len(conv.messages) + 1) + 1 if conv.messages else 1
            response = client.patch(
                self._path(conv, f"/messages/{seq}"), json={"body": "edited"}, headers=user.headers
            )
            if user.id not in conv.members or seq > len(conv.messages):
                assert response.status_code == 404
                return
            message = conv.messages[seq - 1]
            if message.sender != user.id:
                assert response.status_code == 403
            elif message.deleted:
                assert response.status_code == 409
            else:
                assert response.status_code == 200
                message.body = "edited"

        @rule(who=st.integers(0, 3), which=st.integers(0, 1), pick=st.integers(0, 40))
        def delete(self, who: int, which: int, pick: int) -> None:
            user, conv = self.users[who], self.convs[which]
            seq = pick % (len(conv.messages) + 1) + 1 if conv.messages else 1
            response = client.delete(self._path(conv, f"/messages/{seq}"), headers=user.headers)
            if user.id not in conv.members or seq > len(conv.messages):
                assert response.status_code == 404
                return
            message = conv.messages[seq - 1]
            allowed = message.sender == user.id or (
                conv.kind == "group" and conv.roles[user.id] == "owner"
            )
            assert response.status_code == (204 if allowed else 403)
            if allowed:
                message.deleted, message.body = True, None

        @rule(who=st.integers(0, 3), which=st.integers(0, 1), seq=st.integers(0, 60))
        def read(self, who: int, which: int, seq: int) -> None:
            user, conv = self.users[who], self.convs[which]
            response = client.post(
                self._path(conv, "/read"), json={"seq": seq}, headers=user.headers
            )
            if user.id not in conv.members:
                assert response.status_code == 404
                return
            conv.members[user.id] = max(conv.members[user.id], min(seq, len(conv.messages)))
            assert response.get_json() == {
                "last_read_seq": conv.members[user.id],
                "unread_count": conv.unread(user.id),
            }

        @rule(who=st.integers(0, 3), which=st.integers(0, 1), seq=st.integers(1, 60))
        def mark_unread(self, who: int, which: int, seq: int) -> None:
            user, conv = self.users[who], self.convs[which]
            response = client.post(
                self._path(conv, "/unread"), json={"seq": seq}, headers=user.headers
            )
            if user.id not in conv.members:
                assert response.status_code == 404
                return
            conv.members[user.id] = min(seq - 1, len(conv.messages))
            assert response.get_json() == {
                "last_read_seq": conv.members[user.id],
                "unread_count": conv.unread(user.id),
            }

        @rule(who=st.integers(0, 3), other=st.integers(0, 3))
        def add_member(self, who: int, other: int) -> None:
            user, conv, new = self.users[who], self.convs[0], self.users[other]
            response = client.post(
                self._path(conv, "/members"), json={"user_ids": [new.id]}, headers=user.headers
            )
            if user.id not in conv.members:
                assert response.status_code == 404
            elif conv.roles[user.id] != "owner":
                assert response.status_code == 403
            else:
                assert response.status_code == 200
                if new.id not in conv.members:
                    conv.members[new.id] = len(conv.messages)
                    conv.roles[new.id] = "member"
                    conv.joined[new.id] = (next(self.order), new.id)

        @rule(who=st.integers(0, 3), other=st.integers(0, 3))
        def remove_member(self, who: int, other: int) -> None:
            user, conv, gone = self.users[who], self.convs[0], self.users[other]
            response = client.delete(self._path(conv, f"/members/{gone.id}"), headers=user.headers)
            if user.id not in conv.members:
                assert response.status_code == 404
            elif user.id != gone.id and conv.roles[user.id] != "owner":
                assert response.status_code == 403
            elif gone.id not in conv.members:
                assert response.status_code == 404
            else:
                assert response.status_code == 204
                del conv.members[gone.id], conv.roles[gone.id], conv.joined[gone.id]
                if conv.members and "owner" not in conv.roles.values():
                    heir = min(conv.joined, key=lambda uid: conv.joined[uid])
                    conv.roles[heir] = "owner"

        @invariant()
        def every_view_matches_a_recount(self) -> None:
            for user in self.users:
                listed = client.get(
                    "/api/v1/conversations?limit=100", headers=user.headers
                ).get_json()["items"]
                by_id = {c["id"]: c for c in listed}
                expected = {c.id for c in self.convs if user.id in c.members}
                assert set(by_id) == expected
                for conv in self.convs:
                    if user.id not in conv.members:
                        continue
                    view = by_id[conv.id]
                    assert view["unread_count"] == conv.unread(user.id), (user.id, conv)
                    assert view["my_last_read_seq"] == conv.members[user.id]
                    assert view["my_role"] == conv.roles[user.id]
                    assert view["member_count"] == len(conv.members)
                    assert view["last_seq"] == len(conv.messages)
                    if conv.messages:
                        last = conv.messages[-1]
                        got = view["last_message"]
                        assert (got["seq"], got["sender_id"], got["body"], got["deleted"]) == (
                            last.seq,
                            last.sender,
                            last.body,
                            last.deleted,
                        )
                    else:
                        assert view["last_message"] is None

    return Conversations


def test_unread_counts_and_last_messages_match_a_recount(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    machine = build_machine(app, client, users, chat)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=12,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            database=None,
        ),
    )
