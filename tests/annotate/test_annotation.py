"""Annotation queues on a real DuckDB file: dealing, gold mixing, answers, gold accuracy."""
from __future__ import annotations

from collections import Counter

import pytest

from prefpipe.annotate.annotation import (
    add_annotator,
    annotator_for_token,
    enqueue,
    get_task,
    gold_accuracy,
    human_labels,
    next_task,
    progress,
    submit,
    to_pair_choice,
)
from prefpipe.store import Store
from prefpipe.store.keys import label_id


def tasks(store: Store) -> list[dict]:
    return store.query("SELECT * FROM annotation_tasks ORDER BY annotator_id, position").to_pylist()


def responses(n: int) -> list[tuple[str, str]]:
    return [(f"answer A{i}", f"answer B{i}") for i in range(n)]


def with_annotators(store: Store, *names: str) -> None:
    for name in names:
        add_annotator(store, name)


def test_tokens_are_stored_hashed_and_rotate(store, seed):
    token = add_annotator(store, "ann", is_admin=True)
    assert annotator_for_token(store, token) == ("ann", True)
    assert annotator_for_token(store, token + "x") is None and annotator_for_token(store, "") is None
    stored = store.query("SELECT token_sha256 FROM annotators").to_pylist()
    assert token not in str(stored)
    new = add_annotator(store, "ann")
    assert new != token
    assert annotator_for_token(store, token) is None
    assert annotator_for_token(store, new) == ("ann", False)
    with pytest.raises(ValueError, match="annotator id"):
        add_annotator(store, "x' OR 1=1 --")


def test_each_pair_goes_to_overlap_distinct_annotators_balanced(store, seed):
    pairs = seed(store, responses(7))
    with_annotators(store, "u1", "u2", "u3")
    assert enqueue(store, pairs, ["u1", "u2", "u3"], overlap=2, gold={}, gold_every=0, seed=1) == 14
    rows = tasks(store)
    by_pair: dict[str, set] = {}
    for r in rows:
        by_pair.setdefault(r["pair_id"], set()).add(r["annotator_id"])
    assert {p: len(a) for p, a in by_pair.items()} == dict.fromkeys(pairs, 2)
    assert sorted(Counter(r["annotator_id"] for r in rows).values()) == [4, 5, 5]  # 14 = 5 + 5 + 4
    for annotator in ("u1", "u2", "u3"):
        assert [r["position"] for r in rows if r["annotator_id"] == annotator] == list(
            range(sum(r["annotator_id"] == annotator for r in rows)))
    assert {r["shown_order"] for r in rows} == {"ab", "ba"}
    assert all(r["gold_choice"] is None for r in rows)


def test_enqueue_is_idempotent_deterministic_and_tops_up(store, seed, tmp_path):
    pairs = seed(store, responses(6))
    with_annotators(store, "u1", "u2", "u3")
    assert enqueue(store, pairs, ["u1", "u2", "u3"], overlap=1, gold={}, gold_every=0, seed=5) == 6
    assert sorted(Counter(r["annotator_id"] for r in tasks(store)).values()) == [2, 2, 2]
    before = tasks(store)
    assert enqueue(store, pairs, ["u1", "u2", "u3"], overlap=1, gold={}, gold_every=0, seed=5) == 0
    assert tasks(store) == before
    # a higher overlap only adds the missing annotator per pair, after the existing tasks
    assert enqueue(store, pairs, ["u1", "u2", "u3"], overlap=2, gold={}, gold_every=0, seed=5) == 6
    after = tasks(store)
    assert Counter(r["pair_id"] for r in after) == dict.fromkeys(pairs, 2)
    assert sorted(Counter(r["annotator_id"] for r in after).values()) == [4, 4, 4]
    for annotator in ("u1", "u2", "u3"):
        assert [r["position"] for r in after if r["annotator_id"] == annotator] == [0, 1, 2, 3]
    # the same seed on a fresh store deals the same queues
    other = Store(tmp_path / "other.duckdb")
    seed(other, responses(6))
    with_annotators(other, "u1", "u2", "u3")
    enqueue(other, pairs, ["u1", "u2", "u3"], overlap=1, gold={}, gold_every=0, seed=5)
    strip = [{k: v for k, v in r.items() if k != "created_at"} for r in before]
    assert [{k: v for k, v in r.items() if k != "created_at"} for r in tasks(other)] == strip


def test_bad_enqueues_are_refused_with_clear_errors(store, seed):
    pairs = seed(store, responses(2))
    with_annotators(store, "u1", "u2")
    with pytest.raises(ValueError, match="overlap 3 must be between 1 and the number of annotators"):
        enqueue(store, pairs, ["u1", "u2"], overlap=3, gold={}, gold_every=0, seed=0)
    with pytest.raises(ValueError, match="add them with add_annotator"):
        enqueue(store, pairs, ["u1", "nobody"], overlap=1, gold={}, gold_every=0, seed=0)
    with pytest.raises(ValueError, match="pair_ids not in the store"):
        enqueue(store, ["p0", "p404"], ["u1"], overlap=1, gold={}, gold_every=0, seed=0)
    with pytest.raises(ValueError, match="gold choices"):
        enqueue(store, ["p0"], ["u1"], overlap=1, gold={"p1": "tie"}, gold_every=1, seed=0)
    assert tasks(store) == []


def test_gold_items_are_mixed_in_every_k_tasks_across_calls(store, seed):
    pairs = seed(store, responses(9))
    regular, gold = pairs[:6], {"p6": "a", "p7": "b", "p8": "a"}
    with_annotators(store, "solo")
    # 5 regular tasks, a gold item after every 2: R R G R R G R
    assert enqueue(store, regular[:5], ["solo"], overlap=1, gold=gold, gold_every=2, seed=3) == 7
    rows = tasks(store)
    assert [r["gold_choice"] is not None for r in rows] == [False, False, True, False, False, True, False]
    golds = [r["pair_id"] for r in rows if r["gold_choice"]]
    assert len(set(golds)) == 2 and set(golds) <= set(gold)
    assert all(r["gold_choice"] == gold[r["pair_id"]] for r in rows if r["gold_choice"])
    # the count continues: one more regular task completes a run of 2 -> the last gold item
    assert enqueue(store, regular, ["solo"], overlap=1, gold=gold, gold_every=2, seed=3) == 2
    rows = tasks(store)
    assert [r["position"] for r in rows] == list(range(9))
    assert rows[7]["pair_id"] == "p5" and rows[8]["gold_choice"] is not None
    assert {r["pair_id"] for r in rows if r["gold_choice"]} == set(gold)  # gold never repeats
    assert enqueue(store, regular, ["solo"], overlap=1, gold=gold, gold_every=2, seed=3) == 0


def queue_of(store: Store, annotator: str) -> list[dict]:
    return [r for r in tasks(store) if r["annotator_id"] == annotator]


def test_submit_maps_the_shown_order_back_to_a_and_b(store, seed):
    pairs = seed(store, responses(12))
    with_annotators(store, "u1")
    enqueue(store, pairs, ["u1"], overlap=1, gold={}, gold_every=0, seed=0)
    rows = queue_of(store, "u1")
    ab = next(r for r in rows if r["shown_order"] == "ab")
    ba = next(r for r in rows if r["shown_order"] == "ba")
    i_ab, i_ba = int(ab["pair_id"][1:]), int(ba["pair_id"][1:])
    view = get_task(store, "u1", ab["task_id"])
    assert (view.first, view.second) == (f"answer A{i_ab}", f"answer B{i_ab}")
    view = get_task(store, "u1", ba["task_id"])
    assert (view.first, view.second) == (f"answer B{i_ba}", f"answer A{i_ba}")
    assert submit(store, "u1", ab["task_id"], "first", None).choice == "a"
    label = submit(store, "u1", ba["task_id"], "first", "  shorter  ")
    assert (label.choice, label.shown_order, label.rationale) == ("b", "ba", "shorter")
    stored = {r["pair_id"]: r for r in store.query("SELECT * FROM labels").to_pylist()}
    assert stored[ab["pair_id"]]["choice"] == "a" and stored[ba["pair_id"]]["choice"] == "b"
    assert stored[ba["pair_id"]]["source"] == "human" and stored[ba["pair_id"]]["annotator"] == "u1"
    assert stored[ba["pair_id"]]["confidence"] == 1.0 and stored[ba["pair_id"]]["shown_order"] == "ba"
    assert [to_pair_choice(c, o) for c in ("first", "second", "tie", "both_bad") for o in ("ab", "ba")] == [
        "a", "b", "b", "a", "tie", "tie", "both_bad", "both_bad"]


def test_double_submit_keeps_the_first_answer_once(store, seed):
    pairs = seed(store, responses(1))
    with_annotators(store, "u1")
    enqueue(store, pairs, ["u1"], overlap=1, gold={}, gold_every=0, seed=0)
    task = next_task(store, "u1")
    first = submit(store, "u1", task.task_id, "tie", "same")
    again = submit(store, "u1", task.task_id, "both_bad", "changed my mind")
    assert again == first and first.choice == "tie"
    rows = store.query("SELECT label_id, choice, rationale FROM labels").to_pylist()
    assert rows == [{"label_id": label_id("p0", "human", "u1"), "choice": "tie", "rationale": "same"}]


def test_another_annotators_task_is_refused_and_writes_nothing(store, seed):
    pairs = seed(store, responses(2))
    with_annotators(store, "u1", "u2")
    enqueue(store, pairs, ["u1", "u2"], overlap=1, gold={}, gold_every=0, seed=0)
    theirs = queue_of(store, "u2")[0]["task_id"]
    with pytest.raises(PermissionError, match="not in 'u1'"):
        submit(store, "u1", theirs, "first", None)
    with pytest.raises(PermissionError):
        get_task(store, "u1", theirs)
    with pytest.raises(LookupError, match="does not exist"):
        submit(store, "u1", "nope", "first", None)
    with pytest.raises(ValueError, match="choice"):
        submit(store, "u2", theirs, "a", None)
    with pytest.raises(ValueError, match="rationale"):
        submit(store, "u2", theirs, "first", "x" * 5001)
    assert store.count("labels") == 0


def test_next_task_walks_the_queue_and_counts_progress(store, seed):
    pairs = seed(store, responses(3))
    with_annotators(store, "u1")
    enqueue(store, pairs, ["u1"], overlap=1, gold={}, gold_every=0, seed=0)
    seen = []
    for done in range(3):
        task = next_task(store, "u1")
        assert (task.done, task.total, task.position) == (done, 3, done)
        seen.append(task.pair_id)
        submit(store, "u1", task.task_id, "second", None)
    assert next_task(store, "u1") is None
    assert seen == [r["pair_id"] for r in queue_of(store, "u1")]
    assert next_task(store, "stranger") is None


def test_gold_accuracy_progress_and_human_labels(store, seed):
    pairs = seed(store, responses(4))
    gold = {"p2": "a", "p3": "b"}
    with_annotators(store, "u1", "u2")
    enqueue(store, pairs[:2], ["u1", "u2"], overlap=2, gold=gold, gold_every=1, seed=0)
    # each queue: R G R G
    for annotator, right in (("u1", True), ("u2", False)):
        for row in queue_of(store, annotator):
            if row["gold_choice"] is None:
                submit(store, annotator, row["task_id"], "tie", None)
                continue
            # answer the gold item correctly (u1) or wrongly on p3 only (u2)
            want = row["gold_choice"] if right or row["pair_id"] == "p2" else "a"
            shown = "first" if (want == "a") == (row["shown_order"] == "ab") else "second"
            submit(store, annotator, row["task_id"], shown, None)
    assert gold_accuracy(store) == {"u1": (2, 2), "u2": (1, 2)}
    assert progress(store) == [
        {"annotator": "u1", "is_admin": False, "done": 4, "total": 4, "gold_correct": 2, "gold_n": 2,
         "gold_accuracy": 1.0},
        {"annotator": "u2", "is_admin": False, "done": 4, "total": 4, "gold_correct": 1, "gold_n": 2,
         "gold_accuracy": 0.5}]
    assert [(la.pair_id, la.annotator) for la in human_labels(store)] == [
        ("p0", "u1"), ("p0", "u2"), ("p1", "u1"), ("p1", "u2")]
    assert len(human_labels(store, include_gold=True)) == 8
    assert [la.annotator for la in human_labels(store, pair_ids=["p1"])] == ["u1", "u2"]
    assert human_labels(store, pair_ids=[]) == []
