"""Dealing as pure functions of the queues already there: no store."""
from __future__ import annotations

from collections import Counter

import pytest

from prefpipe.annotate import dealing
from prefpipe.annotate.rules import AnnotationError
from prefpipe.store.annotations import ExistingTask


def test_queues_pick_up_load_positions_and_gold_spacing_from_existing_tasks():
    existing = [ExistingTask("u1", "p0", 0, None), ExistingTask("u1", "g0", 1, "a"),
                ExistingTask("u1", "p1", 2, None), ExistingTask("other", "p2", 0, None)]
    queues = dealing.Queues.from_tasks(["u1", "u2"], existing)
    assert queues.load == {"u1": 2, "u2": 0} and queues.next_position == {"u1": 3, "u2": 0}
    assert queues.since_gold == {"u1": 1, "u2": 0}
    assert queues.have == {"p0": {"u1"}, "g0": {"u1"}, "p1": {"u1"}, "p2": {"other"}}


def test_deal_goes_to_the_least_loaded_and_skips_holders():
    queues = dealing.Queues.from_tasks(["u1", "u2", "u3"], [ExistingTask("u1", "p0", 0, None)])
    dealt = dealing.deal(queues, ["p0", "p1", "p2", "p3", "p4"], overlap=2, seed=0)
    holders = Counter(p for pairs in dealt.values() for p in pairs)
    assert holders == {"p0": 1, "p1": 2, "p2": 2, "p3": 2, "p4": 2}
    assert "p0" not in dealt["u1"]
    assert sorted(queues.load.values()) == [3, 3, 4]  # 1 existing + 9 new, one apart at most
    assert dealing.deal(dealing.Queues.from_tasks(["u1", "u2", "u3"], [ExistingTask("u1", "p0", 0, None)]),
                        ["p0", "p1", "p2", "p3", "p4"], overlap=2, seed=0) == dealt  # seeded


def test_task_rows_mix_in_gold_after_every_k_and_number_positions():
    queues = dealing.Queues.from_tasks(["solo"], [])
    rows = dealing.task_rows(queues, {"solo": ["p0", "p1", "p2", "p3"]}, {"g0": "a", "g1": "b"},
                             gold_every=2, seed=1)
    assert [r["gold_choice"] is not None for r in rows] == [False, False, True, False, False, True]
    assert [r["position"] for r in rows] == list(range(6))
    assert {r["shown_order"] for r in rows} <= {"ab", "ba"}
    again = dealing.task_rows(dealing.Queues.from_tasks(["solo"], []), {"solo": ["p0", "p1", "p2", "p3"]},
                              {"g0": "a", "g1": "b"}, gold_every=2, seed=1)
    assert again == rows


@pytest.mark.parametrize("annotators, overlap, gold, gold_every, message", [
    ([], 1, {}, 0, "non-empty list of distinct ids"),
    (["u1", "u1"], 1, {}, 0, "non-empty list of distinct ids"),
    (["u1"], 2, {}, 0, "overlap 2 must be between 1"),
    (["u1"], 1, {}, -1, "gold_every -1 must be >= 0"),
    (["u1"], 1, {"p": "tie"}, 1, "gold choices must be 'a' or 'b'"),
])
def test_bad_requests_are_refused_before_the_store(annotators, overlap, gold, gold_every, message):
    with pytest.raises(AnnotationError, match=message):
        dealing.check_request(annotators, overlap, gold, gold_every)
