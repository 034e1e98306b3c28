"""The DuckDB preference store on a real file: upserts, atomic transactions, lock retries."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime

import duckdb
import pyarrow as pa
import pytest

from prefpipe.store import Store, StoreLocked


def prompt_row(pid: str, prompt: str = "text", split: str = "train", category: str = "c") -> dict:
    return {"prompt_id": pid, "source": "embedded", "category": category, "prompt": prompt,
            "meta": None, "split": split}


def table(*rows: dict) -> pa.Table:
    return pa.Table.from_pylist(list(rows))


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "sub" / "store.duckdb", lock_timeout_s=10.0)


def prompts_by_id(store: Store) -> dict[str, str]:
    return {r["prompt_id"]: r["prompt"] for r in store.query("SELECT * FROM prompts").to_pylist()}


def test_creates_file_and_every_table(store):
    assert store.path.exists()
    names = set(store.query("SELECT table_name FROM information_schema.tables")["table_name"]
                .to_pylist())
    assert {"prompts", "candidates", "pairs", "labels", "runs"} <= names
    assert store.count("prompts") == 0


def test_reopening_keeps_data(store):
    store.upsert("prompts", table(prompt_row("p1")))
    again = Store(store.path)
    assert again.count("prompts") == 1


def test_upsert_replaces_by_key(store):
    assert store.upsert("prompts", table(prompt_row("p1", "old"), prompt_row("p2", "two"))) == 2
    assert store.upsert("prompts", table(prompt_row("p1", "new"), prompt_row("p3", "three"))) == 2
    assert prompts_by_id(store) == {"p1": "new", "p2": "two", "p3": "three"}


def test_upsert_of_no_rows_is_a_no_op(store):
    empty = pa.Table.from_pylist([], schema=table(prompt_row("x")).schema)
    assert store.upsert("prompts", empty) == 0
    assert store.count("prompts") == 0


def test_failed_upsert_writes_nothing_and_loses_nothing(store):
    store.upsert("prompts", table(prompt_row("p1", "old"), prompt_row("p2", "two")))
    # p1 would be replaced, p9 added, but the last row breaks the split CHECK constraint
    bad = table(prompt_row("p1", "new"), prompt_row("p9", "nine"), prompt_row("p8", split="bogus"))
    with pytest.raises(duckdb.Error):
        store.upsert("prompts", bad)
    assert prompts_by_id(store) == {"p1": "old", "p2": "two"}


def test_transaction_that_raises_midway_rolls_back(store):
    store.upsert("prompts", table(prompt_row("p1", "old")))
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction() as con:
            con.execute("DELETE FROM prompts")
            con.execute("INSERT INTO prompts VALUES ('p2', 's', 'c', 'two', NULL, 'train')")
            assert con.execute("SELECT count(*) FROM prompts").fetchone()[0] == 1
            raise RuntimeError("boom")
    assert prompts_by_id(store) == {"p1": "old"}


def test_transaction_commits_on_success(store):
    with store.transaction() as con:
        con.execute("INSERT INTO prompts VALUES ('p2', 's', 'c', 'two', NULL, 'heldout')")
    assert prompts_by_id(store) == {"p2": "two"}


def test_query_with_parameters(store):
    store.upsert("prompts", table(prompt_row("p1", category="math"), prompt_row("p2", category="x"),
                                  prompt_row("p3", category="math", split="heldout")))
    result = store.query("SELECT prompt_id FROM prompts WHERE category = ? AND split = ? "
                         "ORDER BY prompt_id", ["math", "train"])
    assert isinstance(result, pa.Table)
    assert result["prompt_id"].to_pylist() == ["p1"]
    # a parameter is data, never SQL
    assert store.query("SELECT count(*) AS n FROM prompts WHERE category = ?",
                       ["math' OR '1'='1"])["n"].to_pylist() == [0]


def test_record_run(store):
    started = datetime(2024, 1, 2, 3, 4, 5)
    store.record_run("run-1", "sft", "ok", params={"lr": 0.1}, metrics={"loss": 1.5},
                     started_at=started)
    store.record_run("run-1", "label", "failed")
    rows = store.query("SELECT * FROM runs ORDER BY stage DESC").to_pylist()
    assert [(r["run_id"], r["stage"], r["status"]) for r in rows] == [
        ("run-1", "sft", "ok"), ("run-1", "label", "failed")]
    assert json.loads(rows[0]["params"]) == {"lr": 0.1}
    assert json.loads(rows[0]["metrics"]) == {"loss": 1.5}
    assert rows[0]["started_at"] == started
    assert rows[0]["finished_at"] >= started
    assert json.loads(rows[1]["params"]) == {} and json.loads(rows[1]["metrics"]) == {}


HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_locked_file_is_retried_then_times_out_or_succeeds(tmp_path):
    path = tmp_path / "locked.duckdb"
    patient = Store(path, lock_timeout_s=20.0)
    impatient = Store(path, lock_timeout_s=0.05)
    patient.upsert("prompts", table(prompt_row("p1")))
    hold_s = 1.5
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), str(hold_s)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        held_at = time.monotonic()
        with pytest.raises(StoreLocked, match="locked by another process"):
            impatient.count("prompts")
        assert time.monotonic() - held_at < hold_s  # gave up before the holder let go
        assert patient.count("prompts") == 1  # waits for the holder, then succeeds
        waited = time.monotonic() - held_at
        assert waited >= hold_s * 0.8
        assert holder.wait(timeout=10) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def label_row(pair_id: str, source: str = "critic", choice: str = "a") -> dict:
    return {"label_id": f"{pair_id}:{source}", "pair_id": pair_id, "source": source, "annotator": "x",
            "choice": choice, "confidence": 1.0, "principle": None, "rationale": None, "shown_order": None}


def test_labels_check_accepts_every_source_and_choice_of_the_vocabulary(store):
    from prefpipe.vocab import Choice, LabelSource

    rows = [label_row(f"p-{s}-{c}", s, c) for s in LabelSource.values() for c in Choice.values()]
    assert store.upsert("labels", table(*rows)) == len(rows)
    stored = store.query("SELECT DISTINCT source, choice FROM labels").to_pylist()
    assert {(r["source"], r["choice"]) for r in stored} == {(s, c) for s in LabelSource.values()
                                                            for c in Choice.values()}


@pytest.mark.parametrize(("column", "value"), [("source", "crowd"), ("choice", "maybe"),
                                               ("source", "Critic"), ("choice", "A")])
def test_labels_check_rejects_a_name_outside_the_vocabulary(store, column, value):
    store.upsert("labels", table(label_row("kept")))
    with pytest.raises(duckdb.ConstraintException, match="CHECK"):
        store.upsert("labels", table({**label_row("bad"), column: value}))
    assert store.query("SELECT pair_id FROM labels")["pair_id"].to_pylist() == ["kept"]  # nothing written


def test_schema_checks_are_generated_from_the_vocabulary():
    from prefpipe.store.schema import TABLES
    from prefpipe.vocab import Choice, LabelSource

    assert f"CHECK (source IN ({LabelSource.sql_in()}))" in TABLES
    assert f"CHECK (choice IN ({Choice.sql_in()}))" in TABLES
    assert "CHECK (gold_choice IN ('a', 'b'))" in TABLES  # a gold item has a decisive answer
