"""The batched import (`store.imports.batched`, driven by the importer a few rows at a time) leaves
the store exactly as the whole-file import did (`build_rows` + `insert_new`, kept here as the
reference): first occurrences across batch boundaries, sample_index per prompt in file order, rows
the store held left alone, the label stage's preference rows; a bad row anywhere writes nothing."""
from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest

from prefpipe.data.interchange import import_for_training, import_preferences, importer
from prefpipe.data.interchange.batches import FileFirsts
from prefpipe.data.interchange.importer import GENERATION_KEY, IMPORT_ANNOTATOR, _key, parse_file
from prefpipe.errors import DataError
from prefpipe.store import Store
from prefpipe.store.import_batches import ImportSpec
from prefpipe.store.keys import label_id
from prefpipe.world.prompts import prompt_id
from tests.data.interchange.test_importer import snapshot, write_records


def reference_tables(path, source: str = "import", category_column: str | None = None) -> dict:
    """The four tables' rows as the whole-file importer built them (its `build_rows`)."""
    tables: dict[str, dict[str, dict]] = {name: {} for name in ("prompts", "candidates", "pairs", "labels")}
    per_prompt: dict[str, int] = {}

    def candidate(pid: str, response: str) -> str:
        cid = _key(GENERATION_KEY, pid, response)
        if cid not in tables["candidates"]:
            tables["candidates"][cid] = {
                "candidate_id": cid, "prompt_id": pid, "model_version": f"imported:{path.name}",
                "generation_key": GENERATION_KEY, "sample_index": per_prompt.get(pid, 0),
                "response": response, "finished": True, "num_tokens": len(response.split())}
            per_prompt[pid] = per_prompt.get(pid, 0) + 1
        return cid

    for row in parse_file(path, "trl", category_column).rows:
        pref, pid = row.pref, prompt_id(row.pref.prompt)
        tables["prompts"].setdefault(pid, {"prompt_id": pid, "source": path.name, "category": row.category,
                                           "prompt": pref.prompt, "meta": None, "split": "train"})
        a, b = candidate(pid, pref.chosen), candidate(pid, pref.rejected)
        pair_id = _key(a, b)
        tables["pairs"].setdefault(pair_id, {"pair_id": pair_id, "prompt_id": pid, "candidate_a": a,
                                             "candidate_b": b, "generation_key": GENERATION_KEY})
        lid = label_id(pair_id, source, IMPORT_ANNOTATOR)
        tables["labels"].setdefault(lid, {"label_id": lid, "pair_id": pair_id, "source": source,
                                          "annotator": IMPORT_ANNOTATOR, "choice": "a", "confidence": 1.0,
                                          "rationale": f"imported from {path.name} {row.where}"})
    return {name: list(rows.values()) for name, rows in tables.items()}


def reference_preference_rows(tables: dict, source: str = "import") -> list[dict]:
    prompts = {row["prompt_id"]: row for row in tables["prompts"]}
    responses = {row["candidate_id"]: row["response"] for row in tables["candidates"]}
    return [{"pair_id": pair["pair_id"], "prompt_id": pair["prompt_id"],
             "prompt": prompts[pair["prompt_id"]]["prompt"],
             "category": prompts[pair["prompt_id"]]["category"],
             "chosen": responses[pair["candidate_a"]], "chosen_finished": True,
             "rejected": responses[pair["candidate_b"]], "rejected_finished": True, "source": source,
             "confidence": 1.0} for pair in tables["pairs"]]


def records(n: int, seed: int) -> list[dict]:
    """TRL rows over few prompts and responses: repeats of each, and of whole rows, cross batches."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        chosen, rejected = rng.sample(["yes", "no", "maybe so", "four", "4", "two  words"], 2)
        out.append({"prompt": f"question {rng.randrange(6)}?", "chosen": chosen, "rejected": rejected,
                    "topic": rng.choice(["math", "chat"])})
    return out


@pytest.fixture(params=[(3, 3), (3, 7)], ids=["write-each", "write-grouped"])
def small_batches(request, monkeypatch):
    """Rows read 3 at a time, written to the store 3 (or about 7) at a time."""
    monkeypatch.setattr(importer, "BATCH_ROWS", request.param[0])
    monkeypatch.setattr(importer, "WRITE_ROWS", request.param[1])


@pytest.mark.parametrize("container", ["jsonl", "parquet"])
def test_batches_leave_the_store_as_the_whole_file_import_did(tmp_path, small_batches, container):
    earlier = write_records(tmp_path / "earlier", "jsonl", records(8, seed=1))
    later = write_records(tmp_path / "later", container, records(40, seed=2))
    batched, whole = Store(tmp_path / "batched.duckdb"), Store(tmp_path / "whole.duckdb")
    for path in (earlier, later):  # the second file overlaps the first: the first stays provenance
        report = import_preferences(batched, path, "trl", category_column="topic")
        tables = reference_tables(path, category_column="topic")
        assert report.new_pairs == whole.imports.insert_new(tables)["pairs"]
        assert report.preferences == len(tables["pairs"])
        assert report.pair_ids == tuple(pair["pair_id"] for pair in tables["pairs"])
    assert snapshot(batched) == snapshot(whole)
    indexes = batched.query("SELECT sample_index FROM candidates")["sample_index"].to_pylist()
    assert max(indexes) >= 3  # a prompt's responses were numbered across batches
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".import-")] == []


def test_preference_rows_come_a_batch_at_a_time_as_before(tmp_path, small_batches):
    path = write_records(tmp_path / "prefs", "jsonl", records(30, seed=3))
    parts: list[pa.Table] = []
    report = import_for_training(Store(tmp_path / "s.duckdb"), path, "trl", parts.append, "human", "topic")
    assert len(parts) > 1 and report.preferences == sum(part.num_rows for part in parts)
    got = pa.concat_tables(parts).to_pylist()
    assert got == reference_preference_rows(reference_tables(path, "human", "topic"), "human")


def test_a_bad_row_deep_in_a_big_file_is_named_and_nothing_is_written(tmp_path):
    rows = [{"prompt": f"question {i}?", "chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(20_000)]
    rows[12_344] = {"prompt": "question?", "chosen": "yes"}  # line 12,345
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    store = Store(tmp_path / "s.duckdb")
    before = snapshot(store)
    with pytest.raises(DataError) as err:
        import_preferences(store, path, "trl")
    assert str(err.value).startswith(f"{path}: line 12345: missing column 'rejected'")
    assert snapshot(store) == before
    parquet = write_records(tmp_path / "big", "parquet", [{**row, "rejected": row.get("rejected")}
                                                           for row in rows])
    with pytest.raises(DataError, match=r"big\.parquet: row index 12344: column 'rejected' must be text"):
        import_preferences(store, parquet, "trl")
    assert snapshot(store) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".import-")] == []


def test_a_key_another_writer_adds_meanwhile_is_left_as_it_is(tmp_path):
    """The writer leaves out the keys the store held when it began; a row another connection adds
    between two batches fails the next batch's INSERT, which is written again around it."""
    path = write_records(tmp_path / "prefs", "jsonl", [{"prompt": f"question {i}?", "chosen": "yes",
                                                        "rejected": f"no {i}"} for i in range(6)])
    rows, firsts = parse_file(path, "trl").rows, FileFirsts()
    first, second = (importer.batch_table(rows[:3], 0, "import", firsts),
                     importer.batch_table(rows[3:], 3, "import", firsts))
    store = Store(tmp_path / "s.duckdb")
    spec = ImportSpec(path.name, "import", GENERATION_KEY, IMPORT_ANNOTATOR)
    with store.imports.batched(spec) as writer:
        writer.add(first)
        meanwhile = {"prompt_id": prompt_id("question 4?"), "source": "elsewhere", "category": "other",
                     "prompt": "question 4?", "meta": None, "split": "heldout"}
        assert store.imports.insert_new({"prompts": [meanwhile]})["prompts"] == 1
        writer.add(second)
        added = writer.finish()
    assert {table: added[table] for table in ("candidates", "pairs", "labels")} == {
        "candidates": 12, "pairs": 6, "labels": 6}
    prompts = {row["prompt_id"]: row for row in store.query("SELECT * FROM prompts").to_pylist()}
    assert prompts[meanwhile["prompt_id"]] == meanwhile
    assert {row["source"] for pid, row in prompts.items() if pid != meanwhile["prompt_id"]} == {path.name}
