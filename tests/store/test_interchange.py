"""The store's interchange methods: `store.imports.insert_new` (one transaction, idempotent, the
store's own column types) and `store.exports.decisive_votes` (majority of the 'a'/'b' labels)."""
from __future__ import annotations

import pytest

from prefpipe.store import Store

PROMPT = {"prompt_id": "p1", "source": "f", "category": "c", "prompt": "q", "meta": None, "split": "train"}
CANDIDATES = [{"candidate_id": cid, "prompt_id": "p1", "model_version": "m", "generation_key": "g",
               "sample_index": n, "response": response, "finished": True, "num_tokens": 1}
              for n, (cid, response) in enumerate([("c1", "yes"), ("c2", "no")])]
PAIR = {"pair_id": "x", "prompt_id": "p1", "candidate_a": "c1", "candidate_b": "c2", "generation_key": "g"}


def label(label_id: str, choice: str, confidence: float = 1.0, pair_id: str = "x") -> dict:
    return {"label_id": label_id, "pair_id": pair_id, "source": "human", "annotator": label_id,
            "choice": choice, "confidence": confidence}


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "s.duckdb", lock_timeout_s=10.0)


def test_all_tables_are_written_in_one_transaction(store):
    """A failure on the last table (labels) rolls back the prompts, candidates and pairs too."""
    bad_label = label("l1", "maybe")
    with pytest.raises(Exception, match="CHECK constraint"):
        store.imports.insert_new({"prompts": [PROMPT], "candidates": [], "pairs": [], "labels": [bad_label]})
    assert store.count("prompts") == 0


def test_insert_new_adds_only_new_keys_and_keeps_defaults(store):
    tables = {"prompts": [PROMPT], "candidates": CANDIDATES, "pairs": [PAIR], "labels": [label("l1", "a")]}
    assert store.imports.insert_new(tables) == {"prompts": 1, "candidates": 2, "pairs": 1, "labels": 1}
    changed = {**PROMPT, "category": "other"}
    assert store.imports.insert_new({**tables, "prompts": [changed]}) == dict.fromkeys(tables, 0)
    assert store.query("SELECT category FROM prompts")["category"].to_pylist() == ["c"]  # left as it was
    row = store.query("SELECT created_at, principle FROM labels").to_pylist()[0]
    assert row["created_at"] is not None and row["principle"] is None  # columns not given: defaults


def test_insert_new_types_rows_as_the_store_declares_them(store):
    """The rows are typed by the table's own columns: sample_index is an INTEGER (int32) there."""
    too_big = [{**CANDIDATES[0], "sample_index": 2**40}]
    with pytest.raises(Exception, match="too large"):
        store.imports.insert_new({"candidates": too_big})
    store.imports.insert_new({"prompts": [PROMPT], "candidates": CANDIDATES})
    rows = store.query("SELECT sample_index FROM candidates ORDER BY sample_index")
    assert rows["sample_index"].type == "int32" and rows["sample_index"].to_pylist() == [0, 1]


def test_decisive_votes_count_a_and_b_and_leave_out_a_split_vote(store):
    pair_y = {**PAIR, "pair_id": "y"}
    labels = [label("l1", "a", 0.8), label("l2", "a", 0.6), label("l3", "b", 0.9), label("l4", "tie"),
              label("l5", "a", pair_id="y"), label("l6", "b", pair_id="y")]
    store.imports.insert_new({"prompts": [PROMPT], "candidates": CANDIDATES, "pairs": [PAIR, pair_y],
                              "labels": labels})
    (votes,) = store.exports.decisive_votes()
    assert (votes["pair_id"], votes["prompt"]) == ("x", "q")
    assert (votes["response_a"], votes["response_b"]) == ("yes", "no")
    assert (votes["n_a"], votes["n_b"]) == (2, 1)
    assert votes["conf_a"] == pytest.approx(0.7) and votes["conf_b"] == pytest.approx(0.9)


def test_a_store_made_before_the_import_source_takes_imported_labels(tmp_path):
    """A labels table keeps the CHECK it was created with: insert_new rebuilds it with today's
    sources, keeping every row and column."""
    import duckdb

    from prefpipe.store.schema import TABLES

    path = tmp_path / "old.duckdb"
    old_tables = TABLES.replace(", 'import'", "")
    assert old_tables != TABLES
    with duckdb.connect(str(path)) as con:
        con.execute(old_tables)
        con.execute("INSERT INTO labels (label_id, pair_id, source, annotator, choice, confidence, "
                    "rationale, shown_order) VALUES ('h1', 'x', 'human', 'u1', 'b', 1.0, 'why', 'ba')")
        with pytest.raises(duckdb.ConstraintException, match="CHECK constraint"):
            con.execute("INSERT INTO labels (label_id, pair_id, source, annotator, choice, confidence) "
                        "VALUES ('i0', 'x', 'import', 'f', 'a', 1.0)")
    store = Store(path, lock_timeout_s=10.0)
    before = store.query("SELECT * FROM labels").to_pylist()
    imported = {**label("i1", "a"), "source": "import"}
    added = store.imports.insert_new({"prompts": [PROMPT], "labels": [imported]})
    assert added == {"prompts": 1, "labels": 1}
    rows = store.query("SELECT * FROM labels ORDER BY label_id").to_pylist()
    assert rows[0] == before[0] and (rows[1]["label_id"], rows[1]["source"]) == ("i1", "import")
    with pytest.raises(Exception, match="CHECK constraint"):  # the CHECK is still there, with 'import'
        store.imports.insert_new({"labels": [{**label("i2", "a"), "source": "crowd"}]})
    assert store.count("labels") == 2

