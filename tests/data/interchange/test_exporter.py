"""Exporting preferences (from a preferences snapshot or the store) and importing them back."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefpipe.data.interchange import export_preferences, import_preferences
from prefpipe.errors import DataError
from prefpipe.store import Store

from .test_importer import TRL, snapshot, triples, write_records

FORMATS = ("trl", "hh", "ultrafeedback")
SNAPSHOT = [  # the label stage's data/preferences.parquet columns
    {"pair_id": "p1", "prompt_id": "id1", "prompt": "What is 2+2?", "category": "arithmetic",
     "chosen": "4", "chosen_finished": True, "rejected": "It is 5.", "rejected_finished": True,
     "source": "simulated", "confidence": 0.75},
    {"pair_id": "p2", "prompt_id": "id2", "prompt": "Un café/thé, s'il vous plaît.", "category": "chat",
     "chosen": "Voilà \"un café\".", "chosen_finished": True, "rejected": "Non\nmerci",
     "rejected_finished": False, "source": "critic", "confidence": 0.5},
    {"pair_id": "p3", "prompt_id": "id1", "prompt": "What is 2+2?", "category": "arithmetic",
     "chosen": "4", "chosen_finished": True, "rejected": "22", "rejected_finished": True,
     "source": "human", "confidence": 1.0},
]
SNAPSHOT_TRIPLES = {(r["prompt"], r["chosen"], r["rejected"]) for r in SNAPSHOT}


@pytest.fixture
def preferences_path(tmp_path) -> str:
    path = tmp_path / "data" / "preferences.parquet"
    path.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(SNAPSHOT), path)
    return str(path)


def read_rows(path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return pq.read_table(path).to_pylist()


def test_trl_rows_are_the_three_columns(tmp_path, preferences_path):
    out = tmp_path / "out" / "trl.jsonl"
    assert export_preferences(None, out, "trl", preferences_path=preferences_path) == 3
    assert read_rows(out) == [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
                              for r in SNAPSHOT]
    assert "plaît" in out.read_text(encoding="utf-8")  # written as UTF-8, not \u escapes
    assert not list(out.parent.glob("*.tmp"))


def test_hh_rows_are_transcripts(tmp_path, preferences_path):
    out = tmp_path / "hh.parquet"
    export_preferences(None, out, "hh", preferences_path=preferences_path)
    assert pq.read_table(out).column_names == ["chosen", "rejected"]
    assert read_rows(out)[0] == {"chosen": "\n\nHuman: What is 2+2?\n\nAssistant: 4",
                                 "rejected": "\n\nHuman: What is 2+2?\n\nAssistant: It is 5."}


def test_ultrafeedback_rows_are_binarised_messages(tmp_path, preferences_path):
    out = tmp_path / "uf.parquet"
    export_preferences(None, out, "ultrafeedback", preferences_path=preferences_path)
    first = read_rows(out)[0]
    chosen = [{"content": "What is 2+2?", "role": "user"}, {"content": "4", "role": "assistant"}]
    assert first == {"prompt": "What is 2+2?", "prompt_id": "id1", "chosen": chosen,
                     "rejected": [chosen[0], {"content": "It is 5.", "role": "assistant"}],
                     "messages": chosen, "score_chosen": 0.75, "score_rejected": 0.25}


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_snapshot_round_trip(tmp_path, preferences_path, fmt, ext):
    out = tmp_path / f"export.{ext}"
    export_preferences(None, out, fmt, preferences_path=preferences_path)
    store = Store(tmp_path / "s.duckdb", lock_timeout_s=10.0)
    report = import_preferences(store, out, fmt)
    assert triples(store) == SNAPSHOT_TRIPLES
    assert report.new_labels == 3 and report.skipped == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_store_round_trip_through_a_second_store(tmp_path, fmt):
    first = Store(tmp_path / "one.duckdb", lock_timeout_s=10.0)
    hh_prompt = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: Say hi."  # multi-turn survives every format
    records = [*TRL, {"prompt": hh_prompt, "chosen": "Hi!", "rejected": "No."}]
    import_preferences(first, write_records(tmp_path / "in", "jsonl", records), "trl")
    out = tmp_path / f"{fmt}.parquet"
    assert export_preferences(first, out, fmt) == 4
    second = Store(tmp_path / "two.duckdb", lock_timeout_s=10.0)
    import_preferences(second, out, fmt)
    assert triples(second) == triples(first) == {(r["prompt"], r["chosen"], r["rejected"]) for r in records}


def add_votes(store: Store) -> None:
    """Four pairs on one prompt: a 2-1 vote for a, a 1-1 split, a tie only, and one vote for b."""
    store.upsert("prompts", pa.Table.from_pylist([{"prompt_id": "q", "source": "f", "category": "c",
                                                   "prompt": "Q?", "meta": None, "split": "train"}]))
    store.upsert("candidates", pa.Table.from_pylist([
        {"candidate_id": c, "prompt_id": "q", "model_version": "m", "generation_key": "g",
         "sample_index": i, "response": f"resp {c}", "finished": True, "num_tokens": 2}
        for i, c in enumerate("wxyz")]))
    store.upsert("pairs", pa.Table.from_pylist([
        {"pair_id": pid, "prompt_id": "q", "candidate_a": a, "candidate_b": b, "generation_key": "g"}
        for pid, a, b in (("P1", "w", "x"), ("P2", "w", "y"), ("P3", "x", "y"), ("P4", "y", "z"))]))
    votes = [("P1", "a", 0.9), ("P1", "a", 0.7), ("P1", "b", 0.6), ("P2", "a", 1.0), ("P2", "b", 1.0),
             ("P3", "tie", 1.0), ("P4", "b", 0.8), ("P4", "both_bad", 1.0)]
    store.upsert("labels", pa.Table.from_pylist([
        {"label_id": f"L{i}", "pair_id": pid, "source": "human", "annotator": f"ann{i}", "choice": choice,
         "confidence": conf} for i, (pid, choice, conf) in enumerate(votes)]))


def test_store_export_takes_the_majority_of_decisive_labels(tmp_path):
    store = Store(tmp_path / "s.duckdb", lock_timeout_s=10.0)
    add_votes(store)
    out = tmp_path / "votes.jsonl"
    assert export_preferences(store, out, "ultrafeedback") == 2
    rows = read_rows(out)
    got = [(r["chosen"][1]["content"], r["rejected"][1]["content"], r["score_chosen"]) for r in rows]
    assert got == [("resp w", "resp x", pytest.approx(0.8)), ("resp z", "resp y", 0.8)]


def test_empty_export_keeps_the_columns(tmp_path):
    store = Store(tmp_path / "s.duckdb", lock_timeout_s=10.0)
    assert export_preferences(store, tmp_path / "none.parquet", "trl") == 0
    assert pq.read_table(tmp_path / "none.parquet").column_names == ["prompt", "chosen", "rejected"]
    assert export_preferences(store, tmp_path / "none.jsonl", "hh") == 0
    assert (tmp_path / "none.jsonl").read_text() == ""


def test_export_errors(tmp_path, preferences_path):
    store = Store(tmp_path / "s.duckdb", lock_timeout_s=10.0)
    with pytest.raises(DataError, match=r"out\.csv: unknown extension '\.csv'"):
        export_preferences(store, tmp_path / "out.csv", "trl")
    with pytest.raises(DataError, match="unknown format 'dpo'"):
        export_preferences(store, tmp_path / "out.jsonl", "dpo")
    with pytest.raises(DataError, match="pass a store or preferences_path"):
        export_preferences(None, tmp_path / "out.jsonl", "trl")
    with pytest.raises(DataError, match="no.parquet: missing; run the label stage"):
        export_preferences(None, tmp_path / "out.jsonl", "trl", preferences_path=str(tmp_path / "no.parquet"))
    partial = tmp_path / "partial.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "p", "chosen": "a"}]), partial)
    with pytest.raises(DataError, match=r"partial\.parquet: missing columns \['rejected'\]"):
        export_preferences(None, tmp_path / "out.jsonl", "trl", preferences_path=str(partial))
    assert not (tmp_path / "out.jsonl").exists()


def test_reexport_then_reimport_is_idempotent(tmp_path, preferences_path):
    out = tmp_path / "again.jsonl"
    store = Store(tmp_path / "s.duckdb", lock_timeout_s=10.0)
    export_preferences(None, out, "hh", preferences_path=preferences_path)
    import_preferences(store, out, "hh")
    before = snapshot(store)
    export_preferences(None, out, "hh", preferences_path=preferences_path)  # same bytes, same ids
    assert import_preferences(store, out, "hh").new_labels == 0
    assert snapshot(store) == before
