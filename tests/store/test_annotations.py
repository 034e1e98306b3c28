"""`store.annotations` on a real DuckDB file: annotators, dealing transactions, tasks, answers,
the one "unanswered" predicate behind next task, progress and pending counts."""
from __future__ import annotations

import pyarrow as pa
import pytest

from prefpipe.store import Store
from prefpipe.store.annotations import ExistingTask, QueuedTask


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path / "store.duckdb", lock_timeout_s=20)
    prompts = [{"prompt_id": f"q{i}", "source": "test", "category": "math", "prompt": f"prompt {i}",
                "meta": None, "split": "train"} for i in range(3)]
    candidates = [{"candidate_id": f"c{i}{s}", "prompt_id": f"q{i}", "model_version": "m",
                   "generation_key": "g", "sample_index": k, "response": f"answer {s}{i}",
                   "finished": s == "a", "num_tokens": 2} for i in range(3) for k, s in enumerate("ab")]
    pairs = [{"pair_id": f"p{i}", "prompt_id": f"q{i}", "candidate_a": f"c{i}a", "candidate_b": f"c{i}b",
              "generation_key": "g"} for i in range(3)]
    store.upsert("prompts", pa.Table.from_pylist(prompts))
    store.upsert("candidates", pa.Table.from_pylist(candidates))
    store.upsert("pairs", pa.Table.from_pylist(pairs))
    return store


def task(task_id: str, pair: str, annotator: str, position: int, shown: str = "ab",
         gold: str | None = None) -> dict:
    return {"task_id": task_id, "pair_id": pair, "annotator_id": annotator, "position": position,
            "shown_order": shown, "gold_choice": gold}


def queued(store: Store) -> Store:
    """u1: p0 (ab), p1 (ba), gold p2 (a); u2: p0 (ba)."""
    store.annotations.upsert_annotator("u1", "hash1", False)
    store.annotations.upsert_annotator("u2", "hash2", True)
    with store.annotations.dealing() as queue:
        queue.insert_tasks([task("t0", "p0", "u1", 0), task("t1", "p1", "u1", 1, "ba"),
                            task("t2", "p2", "u1", 2, gold="a"), task("t3", "p0", "u2", 0, "ba")])
    return store


def answer(store: Store, task_id: str, annotator: str, choice: str, rationale: str | None = None) -> dict:
    return store.annotations.submit_human_label(task_id, annotator, rationale,
                                                pair_choice=lambda shown: choice,
                                                label_key=lambda pair: f"{pair}:{annotator}")


def test_annotators_are_upserted_and_found_by_token_hash_or_id(store):
    annotations = store.annotations
    annotations.upsert_annotator("ann", "h1", True)
    assert annotations.annotator_for_token_hash("h1") == ("ann", True)
    assert annotations.annotator_token_hash("ann") == ("h1", True)
    annotations.upsert_annotator("ann", "h2", False)  # a new token replaces the old one
    assert annotations.annotator_for_token_hash("h1") is None
    assert annotations.annotator_for_token_hash("h2") == ("ann", False)
    assert annotations.annotator_token_hash("nobody") is None
    assert store.count("annotators") == 1


def test_dealing_reports_missing_ids_reads_queues_and_rolls_back_on_error(store):
    store.annotations.upsert_annotator("u1", "h", False)
    with store.annotations.dealing() as queue:
        assert queue.missing_annotators(["u1", "ghost"]) == ["ghost"]
        assert queue.missing_pairs(["p9", "p0", "p8"]) == ["p9", "p8"]
        assert queue.missing_pairs([]) == []
        assert queue.insert_tasks([]) == 0
        assert queue.insert_tasks([task("t1", "p1", "u1", 1), task("t0", "p0", "u1", 0)]) == 2
        assert queue.existing_tasks() == [ExistingTask("u1", "p0", 0, None),
                                          ExistingTask("u1", "p1", 1, None)]
    with pytest.raises(RuntimeError, match="refused"), store.annotations.dealing() as queue:
        queue.insert_tasks([task("t2", "p2", "u1", 2)])
        raise RuntimeError("refused")
    assert store.count("annotation_tasks") == 2  # the failed transaction wrote nothing


def test_next_task_task_and_counts_follow_the_answers(store):
    queued(store)
    first = store.annotations.next_task("u1")
    assert first == QueuedTask("t0", "p0", "u1", 0, "ab", "q0", "prompt 0", "answer a0", True, "answer b0",
                               False, done=0, total=3)
    answer(store, "t0", "u1", "a")
    assert store.annotations.next_task("u1").task_id == "t1"
    assert store.annotations.queue_counts("u1") == (1, 3)
    assert store.annotations.task("t3") == QueuedTask("t3", "p0", "u2", 0, "ba", "q0", "prompt 0",
                                                      "answer a0", True, "answer b0", False, done=0, total=1)
    assert store.annotations.task("nope") is None
    assert store.annotations.next_task("stranger") is None
    assert store.annotations.queue_counts("stranger") == (0, 0)


def test_a_task_whose_pair_is_gone_comes_back_with_nones(store):
    queued(store)
    store.annotations.upsert_annotator("u3", "h3", False)
    with store.annotations.dealing() as queue:
        queue.insert_tasks([task("t9", "p-gone", "u3", 0)])
    found = store.annotations.next_task("u3")
    assert (found.prompt_id, found.prompt, found.response_a, found.response_b) == (None, None, None, None)


def test_submit_refuses_unknown_and_foreign_tasks_and_keeps_the_first_answer(store):
    queued(store)
    with pytest.raises(LookupError, match="does not exist"):
        answer(store, "nope", "u1", "a")
    with pytest.raises(PermissionError, match="not in 'u2'"):
        answer(store, "t0", "u2", "a")
    stored = answer(store, "t1", "u1", "b", "why")
    assert {k: stored[k] for k in ("label_id", "pair_id", "source", "annotator", "choice", "confidence",
                                   "rationale", "shown_order")} == {
        "label_id": "p1:u1", "pair_id": "p1", "source": "human", "annotator": "u1", "choice": "b",
        "confidence": 1.0, "rationale": "why", "shown_order": "ba"}
    again = answer(store, "t1", "u1", "tie", "changed")
    assert again == stored and store.count("labels") == 1


def test_pending_progress_and_next_task_agree_on_what_is_unanswered(store):
    queued(store)
    assert store.annotations.pending_count() == 4
    assert store.annotations.pending_count(["p0"]) == 2
    assert store.annotations.pending_count([]) == 0
    answer(store, "t0", "u1", "a")
    answer(store, "t2", "u1", "b")  # the gold item, answered wrongly
    # a non-human label or another annotator's answer does not answer a task
    store.upsert("labels", pa.Table.from_pylist([{"label_id": "x", "pair_id": "p0", "source": "critic",
                                                  "annotator": "u2", "choice": "a", "confidence": 0.9,
                                                  "principle": None, "rationale": None,
                                                  "shown_order": None}]))
    assert store.annotations.pending_count() == 2
    assert store.annotations.pending_count(["p0", "p2"]) == 1
    progress = store.annotations.progress()
    assert progress == [
        {"annotator": "u1", "is_admin": False, "done": 2, "total": 3, "gold_correct": 0, "gold_n": 1,
         "gold_accuracy": 0.0},
        {"annotator": "u2", "is_admin": True, "done": 0, "total": 1, "gold_correct": 0, "gold_n": 0,
         "gold_accuracy": None}]
    assert store.annotations.pending_count() == sum(r["total"] - r["done"] for r in progress)
    assert store.annotations.gold_accuracy() == {"u1": (0, 1)}


def test_human_labels_leave_out_gold_unless_asked_and_filter_by_pair(store):
    queued(store)
    answer(store, "t0", "u1", "a")
    answer(store, "t3", "u2", "b")
    answer(store, "t2", "u1", "a")
    assert [(r["pair_id"], r["annotator"]) for r in store.annotations.human_labels()] == [
        ("p0", "u1"), ("p0", "u2")]
    assert [r["pair_id"] for r in store.annotations.human_labels(include_gold=True)] == ["p0", "p0", "p2"]
    assert [r["annotator"] for r in store.annotations.human_labels(["p0"])] == ["u1", "u2"]
    assert store.annotations.human_labels([]) == []


def test_a_human_label_that_answers_no_task_is_no_annotator_s_answer(store):
    """An imported file's labels (source 'import', or 'human' if the importer said so) answer no
    task: they are never among human_labels, progress or gold accuracy."""
    queued(store)
    answer(store, "t0", "u1", "a")
    imported = [{"label_id": f"i{n}", "pair_id": pair, "source": source, "annotator": annotator,
                 "choice": "b", "confidence": 1.0, "principle": None, "rationale": "imported from f.jsonl",
                 "shown_order": None}
                for n, (pair, source, annotator) in enumerate([("p0", "human", "import:file"),
                                                               ("p2", "human", "import:file"),
                                                               ("p1", "import", "u1")])]
    store.upsert("labels", pa.Table.from_pylist(imported))
    assert [(r["pair_id"], r["annotator"]) for r in store.annotations.human_labels(include_gold=True)] == [
        ("p0", "u1")]
    assert store.annotations.gold_accuracy() == {}
    assert [(r["annotator"], r["done"]) for r in store.annotations.progress()] == [("u1", 1), ("u2", 0)]
