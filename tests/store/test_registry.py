"""`store.registry` on a real DuckDB file: the round lifecycle, idempotent starts, atomic publishing,
the 'current' pointer, human-label digests, round history and the migration of an older store."""
from __future__ import annotations

import hashlib

import duckdb
import pyarrow as pa
import pytest

from prefpipe.errors import StoreError
from prefpipe.store import Store


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store.duckdb", lock_timeout_s=20)


def start(store: Store, round: int, prompt_ids=("q1", "q2"), **overrides) -> None:
    args = {"generator_version": None, "generator_hash": "sfthash", "labels_digest": "d0",
            "new_prompts": len(prompt_ids), "new_labels": 0, "reason": "first round",
            "prompt_ids": list(prompt_ids), "flow_run_id": "run-1", **overrides}
    store.registry.start_round(round, **args)


def version_row(round: int, model_hash: str, **overrides) -> dict:
    return {"version": f"r{round}-{model_hash[:8]}", "round": round, "parent_version": None,
            "model_hash": model_hash, "params_sha256": "p", "git_revision": "g", "dvc_lock_sha256": "l",
            "snapshot_sha256": "s", "label_counts": {"simulated": 10, "critic": 2},
            "metrics": {"gold_win_rate": 0.7, "kl": 0.1}, "gates": {"win_rate": True},
            "artifact_uri": f"store/versions/r{round}", "params_yaml": "seed: 1\n", "dvc_lock": "{}",
            **overrides}


def add_label(store: Store, label_id: str, pair_id: str, source: str, choice: str = "a") -> None:
    store.upsert("labels", pa.Table.from_pylist([{
        "label_id": label_id, "pair_id": pair_id, "source": source, "annotator": "u1", "choice": choice,
        "confidence": 1.0}]))


def pair(pair_id: str, **overrides) -> dict:
    return {"pair_id": pair_id, "prompt_id": "q1", "prompt": "2+2?", "category": "math",
            "response_a": "4", "finished_a": True, "response_b": "5", "finished_b": False,
            "choice": "a", "source": "verifier", "confidence": 1.0, **overrides}


def test_a_round_runs_then_is_rejected_or_published(store):
    registry = store.registry
    assert registry.rounds() == [] and registry.last_round() is None and registry.current() is None
    start(store, 1)
    first = registry.last_round()
    assert first["status"] == "running" and first["finished_at"] is None and first["metrics"] is None
    assert first["generator_hash"] == "sfthash" and first["started_at"] is not None
    registry.finish_round(1, "rejected", message="gold win rate 0.40 < 0.55")
    rejected = registry.last_round()
    assert rejected["status"] == "rejected" and rejected["finished_at"] is not None
    assert rejected["message"] == "gold win rate 0.40 < 0.55" and registry.current() is None
    start(store, 2, prompt_ids=["q1", "q2", "q3"])
    registry.publish(version_row(2, "abcdef0123"))
    published = registry.last_round()
    assert published["round"] == 2 and published["status"] == "published"
    assert published["published_version"] == "r2-abcdef01" and published["finished_at"] is not None
    assert registry.current()["version"] == "r2-abcdef01"
    assert registry.known_prompt_ids() == {"q1", "q2", "q3"}
    assert registry.known_prompt_ids(before=2) == {"q1", "q2"}
    registry.finish_round(2, "running")  # reopened: no finish time
    assert registry.last_round()["finished_at"] is None


def test_a_round_notes_the_human_labels_it_took_in(store):
    start(store, 1, labels_digest="d0", labels_count=0)
    assert store.registry.last_round()["labels_count"] == 0
    store.registry.note_labels(1, 3, "d3")
    noted = store.registry.last_round()
    assert (noted["labels_count"], noted["labels_digest"]) == (3, "d3")
    with pytest.raises(StoreError, match="round 2 was never started"):
        store.registry.note_labels(2, 4, "d4")


def test_finish_round_refuses_bad_status_unknown_round_and_version(store):
    start(store, 1)
    with pytest.raises(ValueError, match="'done' is not one of"):
        store.registry.finish_round(1, "done")
    with pytest.raises(ValueError, match="needs the version"):
        store.registry.finish_round(1, "published")
    with pytest.raises(StoreError, match="unknown model version 'r1-nope'"):
        store.registry.finish_round(1, "published", version="r1-nope")
    with pytest.raises(StoreError, match="round 7 was never started"):
        store.registry.finish_round(7, "rejected")
    assert store.registry.last_round()["status"] == "running"


def test_starting_a_round_again_keeps_its_first_start(store):
    start(store, 1, prompt_ids=["q1", "q2", "q2"])  # a duplicate id is stored once
    first = store.registry.last_round()
    start(store, 1, prompt_ids=["q9"], reason="resumed", generator_hash="other", flow_run_id="run-2")
    assert store.registry.rounds() == [first]
    assert store.registry.known_prompt_ids() == {"q1", "q2"}


def test_rounds_carry_their_versions_headline_metrics(store):
    start(store, 1)
    store.registry.publish(version_row(1, "1111111111"))
    start(store, 2)
    store.registry.finish_round(2, "rejected")
    start(store, 3)
    store.registry.publish(version_row(3, "3333333333", metrics={"gold_win_rate": 0.82, "kl": 3.5}))
    rounds = store.registry.rounds()
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert [r["metrics"] for r in rounds] == [{"gold_win_rate": 0.7, "kl": 0.1}, None,
                                             {"gold_win_rate": 0.82, "kl": 3.5}]
    latest = store.registry.version("r3-33333333")
    assert latest["label_counts"] == {"critic": 2, "simulated": 10} and latest["gates"] == {"win_rate": True}
    assert [v["version"] for v in store.registry.versions()] == ["r1-11111111", "r3-33333333"]
    assert store.registry.version("r9-nope") is None


def test_publishing_the_same_version_again_moves_current_only(store):
    start(store, 1)
    store.registry.publish(version_row(1, "1111111111"))
    start(store, 2)
    store.registry.publish(version_row(2, "2222222222", parent_version="r1-11111111"))
    created = store.registry.version("r1-11111111")["created_at"]
    store.registry.publish(version_row(1, "1111111111", metrics={"changed": 1}))
    assert store.registry.current()["version"] == "r1-11111111"
    assert store.registry.version("r1-11111111")["created_at"] == created
    assert store.registry.version("r1-11111111")["metrics"] == {"gold_win_rate": 0.7, "kl": 0.1}
    assert len(store.registry.versions()) == 2


def test_a_failed_publish_changes_nothing(store):
    start(store, 1)
    store.registry.publish(version_row(1, "1111111111"))
    start(store, 2)
    before = (store.registry.rounds(), store.registry.versions(), store.registry.current())
    # the same id with another model: refused
    with pytest.raises(StoreError, match="registered with model hash 1111111111, not 9999999999"):
        store.registry.publish({**version_row(2, "9999999999"), "version": "r1-11111111"})
    # a round never started: the version row and pointer were written when marking the round failed
    with pytest.raises(StoreError, match="round 5 was never started"):
        store.registry.publish(version_row(5, "5555555555"))
    assert (store.registry.rounds(), store.registry.versions(), store.registry.current()) == before
    assert store.registry.version("r5-55555555") is None


def test_publish_refuses_unknown_keys(store):
    start(store, 1)
    with pytest.raises(StoreError, match=r"unknown keys \['modelhash'\]"):
        store.registry.publish({**version_row(1, "1111111111"), "modelhash": "x"})
    assert store.registry.versions() == []


def test_set_current_rolls_back_to_a_known_version_only(store):
    for round, model_hash in ((1, "1111111111"), (2, "2222222222")):
        start(store, round)
        store.registry.publish(version_row(round, model_hash))
    store.registry.set_current("r1-11111111")
    assert store.registry.current()["version"] == "r1-11111111"
    with pytest.raises(StoreError, match="unknown model version 'r3-x'; known versions: "
                                         "r1-11111111, r2-22222222"):
        store.registry.set_current("r3-x")
    assert store.registry.current()["version"] == "r1-11111111"


def test_set_current_on_an_empty_registry_says_so(store):
    with pytest.raises(StoreError, match="nothing published yet"):
        store.registry.set_current("r1-x")
    assert store.registry.current() is None


def test_the_human_digest_changes_with_human_labels_only(store):
    empty = store.registry.human_labels_digest()
    assert empty == (0, hashlib.sha256(b"").hexdigest())
    add_label(store, "l2", "p1", "human", "b")
    one = store.registry.human_labels_digest()
    assert one[0] == 1 and one != empty
    add_label(store, "l3", "p1", "critic")
    add_label(store, "l4", "p2", "simulated")
    assert store.registry.human_labels_digest() == one
    add_label(store, "l1", "p2", "human", "a")
    two = store.registry.human_labels_digest()
    assert two[0] == 2 and two != one
    add_label(store, "l1", "p2", "human", "tie")  # the same label with another choice
    assert store.registry.human_labels_digest() not in (one, two)


def test_human_choices_by_pair_in_label_order(store):
    add_label(store, "l3", "p1", "human", "b")
    add_label(store, "l1", "p1", "human", "a")
    add_label(store, "l2", "p2", "human", "tie")
    add_label(store, "l0", "p1", "critic", "both_bad")
    assert store.registry.human_choices() == {"p1": ["a", "b"], "p2": ["tie"]}
    assert store.registry.human_choices(["p2", "p9"]) == {"p2": ["tie"]}
    assert store.registry.human_choices([]) == {}


def test_pairs_before_a_round_in_round_then_pair_order(store):
    store.registry.record_pairs(2, [pair("p9"), pair("p3", choice=None, source=None, confidence=None)])
    store.registry.record_pairs(1, [pair("p5"), pair("p1")])
    store.registry.record_pairs(3, [pair("p0")])
    store.registry.record_pairs(1, [pair("p5", choice="b", source="human")])  # upsert: last label wins
    rows = store.registry.pairs_before(3)
    assert [(r["round"], r["pair_id"]) for r in rows] == [(1, "p1"), (1, "p5"), (2, "p3"), (2, "p9")]
    assert rows[1]["choice"] == "b" and rows[1]["source"] == "human"
    assert rows[2]["choice"] is None and rows[0]["finished_a"] is True
    assert store.registry.pairs_before(1) == []


def test_record_pairs_names_a_missing_column(store):
    bad = pair("p2")
    del bad["response_b"]
    with pytest.raises(StoreError, match=r"pair row 1 \(p2\) lacks response_b"):
        store.registry.record_pairs(1, [pair("p1"), bad])
    assert store.registry.pairs_before(2) == []


def test_a_store_made_before_rounds_gains_the_tables(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE pairs (pair_id VARCHAR PRIMARY KEY, prompt_id VARCHAR NOT NULL, "
                    "candidate_a VARCHAR NOT NULL, candidate_b VARCHAR NOT NULL, "
                    "generation_key VARCHAR NOT NULL)")
        con.execute("INSERT INTO pairs VALUES ('p1', 'q1', 'ca', 'cb', 'g')")
    store = Store(path, lock_timeout_s=20)
    assert store.query("SELECT * FROM pairs").to_pylist() == [
        {"pair_id": "p1", "prompt_id": "q1", "candidate_a": "ca", "candidate_b": "cb",
         "generation_key": "g", "round": None}]
    assert store.registry.rounds() == [] and store.registry.current() is None
    start(store, 1)
    assert store.registry.last_round()["round"] == 1
