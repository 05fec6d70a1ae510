"""The log read of many woken readers at once answers what each would have read alone."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from app.crud import event_crud
from tests.factories import Chat, UserFactory


def test_ranges_read_what_each_reader_reads_alone(
    app: Flask, client: FlaskClient, users: UserFactory, chat: Chat
) -> None:
    alice, bob, carol = users.create("alice"), users.create("bob"), users.create("carol")
    group = chat.group(alice, bob, carol)
    direct = chat.direct(alice, bob)
    for i in range(5):
        chat.send(alice, group["id"], f"group {i}")
        chat.send(bob, direct["id"], f"direct {i}")
    # Carol leaves: the group's later events stay in nobody's reach but her own removal.
    left = client.delete(
        f"/api/v1/conversations/{group['id']}/members/{carol.id}", headers=carol.headers
    )
    assert left.status_code == 204
    chat.send(alice, group["id"], "after carol left")
    with app.app_context():
        ranges = [
            (user.id, since)
            for user in (alice, bob, carol)
            for since in (0, 3, 7, event_crud.positions(user.id)[0], 10_000)
        ]
        for limit in (1, 4, 200):
            together = event_crud.events_in_ranges([*ranges, ranges[0]], limit)
            assert set(together) == set(ranges)
            for user_id, since in ranges:
                alone, scanned = event_crud.events_after(user_id, since, limit)
                rows, scanned_together = together[user_id, since]
                assert [(e.seq, e.type, e.data) for e in alone] == [
                    (e.seq, e.type, e.data) for e in rows
                ], (user_id, since, limit)
                assert scanned_together == scanned
        carol_log, _ = event_crud.events_after(carol.id, 0, 200)
        assert carol_log[-1].type == "member.removed"  # the case the ranges must keep


def test_ranges_past_one_statement_and_no_ranges(app: Flask, users: UserFactory) -> None:
    alice = users.create("alice")
    with app.app_context():
        many = [(alice.id, since) for since in range(1500)]  # two statements
        assert event_crud.events_in_ranges(many, 10) == {r: ([], r[1]) for r in many}
        assert event_crud.events_in_ranges([], 10) == {}
