"""Importing preference files into a real DuckDB store: every format and container, bad rows, re-imports."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefpipe.data.interchange import ImportReport, import_preferences
from prefpipe.data.interchange.importer import IMPORT_ANNOTATOR
from prefpipe.errors import DataError
from prefpipe.store import Store
from prefpipe.world.prompts import prompt_id

CONTAINERS = ("jsonl", "parquet", "folder")
TABLES = ("prompts", "candidates", "pairs", "labels")

TRL = [{"prompt": "What is 2+2?", "chosen": "4", "rejected": "5", "topic": "math"},
       {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No.", "topic": "chat"},
       {"prompt": "What is 2+2?", "chosen": "4", "rejected": "22", "topic": "math"}]
TRL_TRIPLES = {("What is 2+2?", "4", "5"), ("Say hi.", "Hi!", "No."), ("What is 2+2?", "4", "22")}
CONVERSATIONAL = [
    {"prompt": [{"role": "user", "content": "What is 2+2?"}],
     "chosen": [{"role": "assistant", "content": "4"}],
     "rejected": [{"role": "assistant", "content": "5"}]},
    {"prompt": [{"role": "user", "content": "Say hi."}],
     "chosen": [{"role": "assistant", "content": "Hi!"}],
     "rejected": [{"role": "assistant", "content": "No."}]},
]
HH = [{"chosen": "\n\nHuman: What is 2+2?\n\nAssistant: 4",
       "rejected": "\n\nHuman: What is 2+2?\n\nAssistant: 5"},
      {"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: Say hi.\n\nAssistant: Hi!",
       "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: Say hi.\n\nAssistant: No."}]
HH_TRIPLES = {("What is 2+2?", "4", "5"),
              ("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: Say hi.", "Hi!", "No.")}
ULTRAFEEDBACK = [  # the second row ties at the top and is skipped
    {"instruction": "What is 2+2?", "completions": [{"response": "5", "overall_score": 2.0},
                                                    {"response": "4", "overall_score": 9.5}]},
    {"instruction": "Say hi.", "completions": [{"response": "Hi!", "overall_score": 7.0},
                                               {"response": "Hello!", "overall_score": 7.0},
                                               {"response": "No.", "overall_score": 1.0}]},
    {"instruction": "Name a colour.", "completions": [{"response": "red", "overall_score": 8.0},
                                                      {"response": "7", "overall_score": None},
                                                      {"response": "car", "overall_score": 1.5}]},
]
UF_TRIPLES = {("What is 2+2?", "4", "5"), ("Name a colour.", "red", "car")}
UF_BINARISED = [{"prompt": p, "prompt_id": "x", "score_chosen": 8.0, "score_rejected": 2.0,
                 "chosen": [{"role": "user", "content": p}, {"role": "assistant", "content": c}],
                 "rejected": [{"role": "user", "content": p}, {"role": "assistant", "content": r}]}
                for p, c, r in sorted(TRL_TRIPLES)]

CASES = {
    "trl": ("trl", TRL, TRL_TRIPLES),
    "trl-conversational": ("trl", CONVERSATIONAL, {("What is 2+2?", "4", "5"), ("Say hi.", "Hi!", "No.")}),
    "hh": ("hh", HH, HH_TRIPLES),
    "ultrafeedback": ("ultrafeedback", ULTRAFEEDBACK, UF_TRIPLES),
    "ultrafeedback-binarised": ("ultrafeedback", UF_BINARISED, TRL_TRIPLES),
}


def write_records(base: Path, container: str, records: list[dict]) -> Path:
    """The records as a .jsonl file, a .parquet file or a datasets save_to_disk folder."""
    if container == "jsonl":
        path = base.with_suffix(".jsonl")
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif container == "parquet":
        path = base.with_suffix(".parquet")
        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        import datasets

        path = base
        datasets.Dataset.from_list(records).save_to_disk(str(path))
    return path


def triples(store: Store) -> set[tuple[str, str, str]]:
    """(prompt, chosen, rejected) of every decisive label in the store."""
    rows = store.query("""
        SELECT pr.prompt, CASE WHEN l.choice = 'a' THEN ca.response ELSE cb.response END AS chosen,
               CASE WHEN l.choice = 'a' THEN cb.response ELSE ca.response END AS rejected
        FROM labels l JOIN pairs p USING (pair_id) JOIN prompts pr ON pr.prompt_id = p.prompt_id
        JOIN candidates ca ON ca.candidate_id = p.candidate_a
        JOIN candidates cb ON cb.candidate_id = p.candidate_b
        WHERE l.choice IN ('a', 'b')""").to_pylist()
    return {(r["prompt"], r["chosen"], r["rejected"]) for r in rows}


def snapshot(store: Store) -> dict[str, list]:
    """Every row of the four tables (labels without their timestamp), for before/after checks."""
    out = {}
    for table in TABLES:
        rows = store.query(f"SELECT * FROM {table}").to_pylist()
        out[table] = sorted(json.dumps({k: v for k, v in r.items() if k != "created_at"}, sort_keys=True)
                            for r in rows)
    return out


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "s.duckdb", lock_timeout_s=10.0)


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_format_and_container_imports_its_triples(store, tmp_path, case, container):
    fmt, records, expected = CASES[case]
    path = write_records(tmp_path / case, container, records)
    report = import_preferences(store, path, fmt)
    assert triples(store) == expected
    assert report.preferences == report.new_pairs == report.new_labels == len(expected)
    assert report.rows == len(records)
    assert report.skipped == (1 if case == "ultrafeedback" else 0)
    assert report.new_prompts == len({t[0] for t in expected}) == store.count("prompts")
    assert report.new_candidates == len({(t[0], r) for t in expected for r in t[1:]})


def test_rows_follow_the_store_conventions(store, tmp_path):
    path = write_records(tmp_path / "trl_prefs", "jsonl", TRL)
    import_preferences(store, path, "trl", source="critic", category_column="topic")
    prompts = {r["prompt"]: r for r in store.query("SELECT * FROM prompts").to_pylist()}
    assert prompts["What is 2+2?"] == {"prompt_id": prompt_id("What is 2+2?"), "source": "trl_prefs.jsonl",
                                       "category": "math", "prompt": "What is 2+2?", "meta": None,
                                       "split": "train"}
    assert prompts["Say hi."]["category"] == "chat"
    candidates = store.query("SELECT * FROM candidates ORDER BY prompt_id, sample_index").to_pylist()
    assert {c["model_version"] for c in candidates} == {"imported:trl_prefs.jsonl"}
    assert all(c["finished"] for c in candidates)
    by_response = {c["response"]: c for c in candidates}
    # '4' is shared by two pairs: stored once; sample_index counts a prompt's responses in file order
    assert len(candidates) == 5
    assert [by_response[r]["sample_index"] for r in ("4", "5", "22")] == [0, 1, 2]
    assert by_response["Hi!"]["num_tokens"] == 1
    labels = store.query("SELECT * FROM labels ORDER BY rationale").to_pylist()
    assert {(lab["source"], lab["annotator"], lab["choice"], lab["confidence"]) for lab in labels} == \
        {("critic", IMPORT_ANNOTATOR, "a", 1.0)}
    assert [lab["rationale"] for lab in labels] == [f"imported from trl_prefs.jsonl line {n}"
                                                    for n in (1, 2, 3)]
    pairs = store.query("SELECT p.*, ca.response AS a, cb.response AS b FROM pairs p "
                        "JOIN candidates ca ON ca.candidate_id = p.candidate_a "
                        "JOIN candidates cb ON cb.candidate_id = p.candidate_b").to_pylist()
    assert {(p["a"], p["b"]) for p in pairs} == {("4", "5"), ("4", "22"), ("Hi!", "No.")}  # a = chosen


def test_reimport_adds_nothing(store, tmp_path):
    path = write_records(tmp_path / "prefs", "parquet", TRL + TRL[:1])
    first = import_preferences(store, path, "trl")
    assert first.duplicates == 1 and first.preferences == 3
    before = snapshot(store)
    second = import_preferences(store, path, "trl")
    assert (second.new_prompts, second.new_candidates, second.new_pairs, second.new_labels) == (0, 0, 0, 0)
    assert snapshot(store) == before


def test_a_prompt_already_in_the_store_keeps_its_row(store, tmp_path):
    embedded = {"prompt_id": prompt_id("What is 2+2?"), "source": "embedded", "category": "arithmetic",
                "prompt": "What is 2+2?", "meta": '{"answer": 4}', "split": "heldout"}
    store.upsert("prompts", pa.Table.from_pylist([embedded]))
    report = import_preferences(store, write_records(tmp_path / "hh", "jsonl", HH), "hh")
    assert report.new_prompts == 1  # only the multi-turn prompt is new
    kept = store.query("SELECT * FROM prompts WHERE prompt_id = ?", [embedded["prompt_id"]]).to_pylist()
    assert kept == [embedded]


def test_the_same_content_under_another_name_format_or_container_imports_once(store, tmp_path):
    first = import_preferences(store, write_records(tmp_path / "one", "jsonl", TRL[:2]), "trl")
    before = snapshot(store)
    hh = [{"chosen": f"\n\nHuman: {r['prompt']}\n\nAssistant: {r['chosen']}",
           "rejected": f"\n\nHuman: {r['prompt']}\n\nAssistant: {r['rejected']}"} for r in TRL[:2]]
    for name, container, fmt, records in [("two", "parquet", "trl", TRL[:2]), ("three", "jsonl", "hh", hh),
                                          ("four", "folder", "trl", TRL[1::-1])]:
        again = import_preferences(store, write_records(tmp_path / name, container, records), fmt)
        assert again.pair_ids == first.pair_ids[::-1] if name == "four" else first.pair_ids
        assert (again.new_prompts, again.new_candidates, again.new_pairs, again.new_labels) == (0, 0, 0, 0)
    assert snapshot(store) == before  # the first file stays the provenance: prompt source, rationale
    assert set(store.query("SELECT source FROM prompts")["source"].to_pylist()) == {"one.jsonl"}
    # new content in a known file name is new
    more = import_preferences(store, write_records(tmp_path / "one", "jsonl", TRL), "trl")
    assert (more.new_pairs, more.new_labels, more.new_candidates) == (1, 1, 1)


# --- bad rows: the message names file and row, and the store is unchanged ------------------------

GOOD = TRL[:2]
BAD_ROWS = {  # name: (fmt, bad record, problem in the message)
    "missing column": ("trl", {"prompt": "p", "chosen": "a"}, "missing column 'rejected'"),
    "wrong type": ("trl", {"prompt": "p", "chosen": "a", "rejected": 5}, "column 'rejected' must be text"),
    "empty string": ("trl", {"prompt": "p", "chosen": "", "rejected": "b"}, "column 'chosen' is empty"),
    "chosen == rejected": ("trl", {"prompt": "p", "chosen": "same", "rejected": "same"},
                           "chosen and rejected are the same"),
    "hh prompt mismatch": ("hh", {"chosen": "\n\nHuman: a\n\nAssistant: x",
                                  "rejected": "\n\nHuman: b\n\nAssistant: y"}, "HH prompt mismatch"),
    "ultrafeedback score": ("ultrafeedback", {"instruction": "p", "completions": [
        {"response": "a", "overall_score": "great"}, {"response": "b", "overall_score": "bad"}]},
        "completions[0].overall_score must be a number"),
}
GOOD_BY_FORMAT = {"trl": GOOD, "hh": HH, "ultrafeedback": ULTRAFEEDBACK}


@pytest.fixture
def filled(store, tmp_path) -> Store:
    import_preferences(store, write_records(tmp_path / "earlier", "jsonl", TRL), "trl")
    return store


@pytest.mark.parametrize("name", sorted(BAD_ROWS))
def test_jsonl_bad_row_names_file_and_line_and_imports_nothing(filled, tmp_path, name):
    fmt, bad, problem = BAD_ROWS[name]
    good = GOOD_BY_FORMAT[fmt]
    path = tmp_path / "bad.jsonl"
    # a blank line keeps counting: the bad record sits on line len(good) + 2
    path.write_text("".join(json.dumps(r) + "\n" for r in good) + "\n" + json.dumps(bad) + "\n")
    before = snapshot(filled)
    with pytest.raises(DataError) as err:
        import_preferences(filled, path, fmt)
    assert str(err.value).startswith(f"{path}: line {len(good) + 2}: ")
    assert problem in str(err.value)
    assert snapshot(filled) == before


@pytest.mark.parametrize("container", ["parquet", "folder"])
def test_parquet_and_datasets_bad_row_names_the_row_index(filled, tmp_path, container):
    records = [*GOOD, {"prompt": "p", "chosen": None, "rejected": "b"}, GOOD[0]]
    path = write_records(tmp_path / "bad", container, records)
    before = snapshot(filled)
    with pytest.raises(DataError) as err:
        import_preferences(filled, path, "trl")
    assert str(err.value).startswith(f"{path}: row index 2: column 'chosen' must be text")
    assert snapshot(filled) == before


def test_invalid_json_line(filled, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(GOOD[0]) + "\n" + '{"prompt": "p", "chosen": \n' + json.dumps(GOOD[1]) + "\n")
    before = snapshot(filled)
    with pytest.raises(DataError, match=r"broken\.jsonl: line 2: not valid JSON"):
        import_preferences(filled, path, "trl")
    assert snapshot(filled) == before


@pytest.mark.parametrize("text, problem", [
    ("[1, 2]\n", "line 1: expected a JSON object, got array"),
    ('{"prompt": "p"}\n\xff\n', None),
])
def test_not_an_object_or_not_utf8(store, tmp_path, text, problem):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(DataError) as err:
        import_preferences(store, path, "trl")
    assert (problem or "line 2: not UTF-8") in str(err.value)
    assert store.count("labels") == 0


def test_missing_category_column_is_a_bad_row(store, tmp_path):
    path = write_records(tmp_path / "cats", "jsonl", [*TRL, {"prompt": "q", "chosen": "a", "rejected": "b"}])
    with pytest.raises(DataError, match=r"line 4: missing category column 'topic'"):
        import_preferences(store, path, "trl", category_column="topic")
    assert store.count("prompts") == 0


@pytest.mark.parametrize("kwargs, problem", [
    ({"fmt": "csv"}, "unknown format 'csv'"),
    ({"fmt": "trl", "source": "crowd"}, "source 'crowd' is not a label source"),
])
def test_bad_arguments(store, tmp_path, kwargs, problem):
    path = write_records(tmp_path / "ok", "jsonl", TRL)
    with pytest.raises(DataError, match=problem):
        import_preferences(store, path, **kwargs)
    assert store.count("prompts") == 0


def test_bad_files(store, tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: no such file"):
        import_preferences(store, tmp_path / "nope.jsonl", "trl")
    (tmp_path / "data.csv").write_text("prompt,chosen,rejected\n")
    with pytest.raises(DataError, match="unsupported container '.csv'"):
        import_preferences(store, tmp_path / "data.csv", "trl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="empty.jsonl: no rows"):
        import_preferences(store, tmp_path / "empty.jsonl", "trl")
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="corrupt.parquet: not a readable Parquet file"):
        import_preferences(store, tmp_path / "corrupt.parquet", "trl")


def test_report_type(store, tmp_path):
    path = write_records(tmp_path / "uf", "jsonl", ULTRAFEEDBACK)
    report = import_preferences(store, path, "ultrafeedback")
    assert isinstance(report, ImportReport)
    assert (report.rows, report.preferences, report.skipped, report.duplicates) == (3, 2, 1, 0)


# --- every bad row in one run, size limits, JSON arrays ------------------------------------------

def test_every_bad_row_is_reported_in_one_run(filled, tmp_path):
    cut = '{"prompt": "p", "chosen": "a", "rejected": '  # a line cut short: its column is its end
    lines = [json.dumps(GOOD[0]), json.dumps({"prompt": "p", "chosen": "a"}), cut, "[1, 2]",
             json.dumps(GOOD[1]), json.dumps({"prompt": "p", "chosen": "a", "rejected": 5}), "",
             json.dumps({"prompt": "p", "chosen": "same", "rejected": "same"})]
    path = tmp_path / "five_bad.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"prompt": "\xff"}\n')
    before = snapshot(filled)
    with pytest.raises(DataError) as err:
        import_preferences(filled, path, "trl")
    first, *listed = str(err.value).splitlines()
    assert first.startswith(f"{path}: 6 bad rows (format 'trl'; nothing was imported)")
    assert listed == [
        f"  {path}: line 2: missing column 'rejected' (columns here: prompt, chosen)",
        f"  {path}: line 3: not valid JSON: Expecting value at column {len(cut) + 1} (the line ends "
        "there: is it cut short?)",
        f"  {path}: line 4: expected a JSON object, got array (a JSON array of records belongs in a "
        ".json file)",
        f"  {path}: line 6: column 'rejected' must be text, got int 5",
        f"  {path}: line 8: chosen and rejected are the same response; a preference needs two",
        f"  {path}: line 9: not UTF-8 text (invalid start byte at byte 12 of the line); save the file "
        "as UTF-8"]
    assert snapshot(filled) == before


def test_the_list_of_bad_rows_stops_at_fifty_then_counts(store, tmp_path):
    path = write_records(tmp_path / "many_bad", "jsonl", [{"prompt": "p", "chosen": "a"}] * 62 + GOOD)
    with pytest.raises(DataError) as err:
        import_preferences(store, path, "trl")
    lines = str(err.value).splitlines()
    assert lines[0].startswith(f"{path}: 62 bad rows") and len(lines) == 1 + 50 + 1
    assert lines[50].startswith(f"  {path}: line 50: ") and lines[-1] == "  ... and 12 more"


LONG = {"prompt": "Say hi.", "chosen": "h" * 30, "rejected": "No."}


@pytest.mark.parametrize("record, field, size", [
    (LONG, "chosen response", 30), ({**LONG, "chosen": "Hi!", "rejected": "n" * 25}, "rejected response", 25),
    ({**LONG, "prompt": "q" * 21, "chosen": "Hi!"}, "prompt", 21)])
def test_a_field_over_max_chars_is_refused_with_row_field_and_limit(store, tmp_path, record, field, size):
    path = write_records(tmp_path / "long", "jsonl", [*GOOD, record])
    with pytest.raises(DataError) as err:
        import_preferences(store, path, "trl", max_chars=20)
    assert str(err.value).startswith(f"{path}: line 3: the {field} has {size} characters, over the "
                                     "limit of 20 (label.importing.max_chars)")
    assert "--truncate" in str(err.value) and store.count("labels") == 0
    assert import_preferences(store, path, "trl", max_chars=size).new_labels == 3  # at the limit: fine


def test_truncate_cuts_long_fields_and_counts_the_rows(store, tmp_path):
    same_start = {"prompt": "Say hi.", "chosen": "x" * 25 + "a", "rejected": "x" * 25 + "b"}
    path = write_records(tmp_path / "long", "jsonl", [*GOOD, LONG, {**LONG, "prompt": "q" * 40}])
    report = import_preferences(store, path, "trl", max_chars=20, truncate=True)
    assert (report.truncated, report.new_labels) == (2, 4) and "2 rows cut to fit" in report.summary()
    assert max(store.query("SELECT length(response) AS n FROM candidates")["n"].to_pylist()) == 20
    assert "q" * 20 in store.query("SELECT prompt FROM prompts")["prompt"].to_pylist()
    untouched = import_preferences(store, write_records(tmp_path / "short", "jsonl", GOOD), "trl",
                                   max_chars=20, truncate=True)
    assert untouched.truncated == 0 and "cut to fit" not in untouched.summary()
    alike = write_records(tmp_path / "alike", "jsonl", [same_start])
    with pytest.raises(DataError, match="line 1: chosen and rejected are the same once cut to 20"):
        import_preferences(store, alike, "trl", max_chars=20, truncate=True)


def test_imports_take_their_own_label_source_by_default(store, tmp_path):
    report = import_preferences(store, write_records(tmp_path / "p", "jsonl", TRL), "trl")
    assert report.source == "import" and "source 'import'" in report.summary()
    assert store.query("SELECT DISTINCT source FROM labels")["source"].to_pylist() == ["import"]


def test_a_json_array_file_is_read_as_records(store, tmp_path):
    path = tmp_path / "prefs.json"
    path.write_text(json.dumps(TRL, indent=2))
    report = import_preferences(store, path, "trl")
    assert triples(store) == TRL_TRIPLES and report.rows == 3
    lines = tmp_path / "lines.json"  # a .json file of JSON lines is still read as lines
    lines.write_text("".join(json.dumps(r) + "\n" for r in HH))
    assert import_preferences(store, lines, "hh").preferences == 2


@pytest.mark.parametrize("text, problem", [
    ('[\n  {"prompt": "p", "chosen": "a", "rejected": "b"},\n  7,\n  {"prompt": "p"}\n]',
     "2 bad rows"),
    ('[{"prompt": "p", "chosen": "a", "rejected": "b"},\n {"prompt": "q", "chosen": ',
     "line 2: not a valid JSON array: Expecting value at column 28 (the file ends there: is it cut short?)"),
    ('{\n  "prompt": "p",\n  "chosen": "a",\n  "rejected": "b"\n}\n',
     "line 1: the file holds one JSON object spread over several lines; give one object per line"),
])
def test_a_bad_json_array_file_says_what_is_wrong_where(store, tmp_path, text, problem):
    path = tmp_path / "prefs.json"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        import_preferences(store, path, "trl")
    assert problem in str(err.value) and "not valid JSON (" not in str(err.value)
    if problem == "2 bad rows":
        assert f"{path}: line 3 (array index 1): expected a JSON object, got number" in str(err.value)
        assert f"{path}: line 4 (array index 2): missing column 'chosen'" in str(err.value)
    assert store.count("labels") == 0
