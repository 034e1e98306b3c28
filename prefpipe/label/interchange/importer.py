"""Import preference files (TRL, HH-RLHF, UltraFeedback; JSONL, Parquet or a `datasets` folder) into
the store, validating every row before anything is written.

Each preference becomes a prompt (source = the file name, split 'train'), two candidates
(model_version 'imported:<file>'), a pair (a = chosen) and a label (choice 'a', confidence 1.0,
annotator 'import:<file>'). Ids are content hashes, and rows whose id exists are left as they are,
so importing a file again adds nothing and a prompt the store already holds (say, an embedded world
prompt with its gold facts) keeps its row. All four tables are written in one transaction.

    from prefpipe.label.interchange import import_preferences
    report = import_preferences(Store("store/prefpipe.duckdb"), "hh.jsonl", "hh", source="human")
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from prefpipe.label.interchange.formats import PARSERS, BadRow, InterchangeError, Preference, check_format
from prefpipe.label.types import SOURCES, label_id
from prefpipe.store import Store
from prefpipe.world.prompts import prompt_id

DEFAULT_CATEGORY = "imported"
JSONL_SUFFIXES = (".jsonl", ".json")
SCHEMAS = {
    "prompts": pa.schema([("prompt_id", pa.string()), ("source", pa.string()), ("category", pa.string()),
                          ("prompt", pa.string()), ("meta", pa.string()), ("split", pa.string())]),
    "candidates": pa.schema([("candidate_id", pa.string()), ("prompt_id", pa.string()),
                             ("model_version", pa.string()), ("generation_key", pa.string()),
                             ("sample_index", pa.int32()), ("response", pa.string()),
                             ("finished", pa.bool_()), ("num_tokens", pa.int32())]),
    "pairs": pa.schema([("pair_id", pa.string()), ("prompt_id", pa.string()), ("candidate_a", pa.string()),
                        ("candidate_b", pa.string()), ("generation_key", pa.string())]),
    "labels": pa.schema([("label_id", pa.string()), ("pair_id", pa.string()), ("source", pa.string()),
                         ("annotator", pa.string()), ("choice", pa.string()), ("confidence", pa.float64())]),
}


@dataclass(frozen=True)
class ImportReport:
    """What one import read and what it added (the `new_*` counts are 0 on a repeat import)."""
    path: str
    fmt: str
    rows: int  # records read (blank JSONL lines not counted)
    preferences: int  # distinct (prompt, chosen, rejected) preferences in the file
    skipped: int  # rows the format's rule leaves out (UltraFeedback ties, < 2 scored completions)
    duplicates: int  # rows repeating a preference seen earlier in the same file
    new_prompts: int
    new_candidates: int
    new_pairs: int
    new_labels: int


def _key(*parts) -> str:
    """The store's id: the first 16 hex digits of SHA-256 over the parts (as `tasks.generate`)."""
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:16]


# --- containers --------------------------------------------------------------------------------

def read_records(path: Path) -> list[tuple[str, dict]]:
    """(where, record) per row: 'line N' (1-based) for JSONL, 'row index N' for Parquet and
    `datasets` folders. Blank JSONL lines are skipped; a line that is not a JSON object is an error."""
    if not path.exists():
        raise InterchangeError(f"{path}: no such file or folder to import; check the path")
    if path.is_dir():
        return [(f"row index {i}", r) for i, r in enumerate(_read_datasets_folder(path))]
    if path.suffix == ".parquet":
        try:
            records = pq.read_table(path).to_pylist()
        except Exception as err:  # pyarrow raises several types for a corrupt file
            raise InterchangeError(f"{path}: not a readable Parquet file: {err}") from err
        return [(f"row index {i}", r) for i, r in enumerate(records)]
    if path.suffix in JSONL_SUFFIXES:
        return _read_jsonl(path)
    raise InterchangeError(f"{path}: unsupported container '{path.suffix}'; use .jsonl, .parquet or a "
                           "folder saved with datasets' save_to_disk")


def _read_jsonl(path: Path) -> list[tuple[str, dict]]:
    records = []
    with path.open("rb") as lines:  # binary: lines end at b"\n" only, as JSON Lines says
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InterchangeError(f"{path}: line {number}: not UTF-8 text ({err.reason} at byte "
                                       f"{err.start}); save the file as UTF-8") from err
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise InterchangeError(f"{path}: line {number}: not valid JSON ({err.msg} at column "
                                       f"{err.colno}); fix the line and import again") from err
            if not isinstance(record, dict):
                raise InterchangeError(f"{path}: line {number}: expected a JSON object, got "
                                       f"{type(record).__name__}")
            records.append((f"line {number}", record))
    return records


def _read_datasets_folder(path: Path) -> list[dict]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:
        raise InterchangeError(f"{path}: not a folder saved with datasets' save_to_disk: {err}") from err
    if isinstance(loaded, datasets.DatasetDict):
        if "train" in loaded:
            loaded = loaded["train"]
        elif len(loaded) == 1:
            loaded = next(iter(loaded.values()))
        else:
            raise InterchangeError(f"{path}: a DatasetDict with splits {sorted(loaded)} and no 'train'; "
                                   "save the split to import on its own")
    return loaded.to_list()


# --- validate, then build rows -----------------------------------------------------------------

def parse_file(path: Path, fmt: str, category_column: str | None = None,
               seed: int = 0) -> tuple[list[tuple[Preference, str]], int, int]:
    """Every row parsed and checked: ([(preference, category)], rows read, rows skipped).

    The first bad row raises InterchangeError naming the file, the row and the problem."""
    parse = PARSERS[check_format(fmt)]
    records = read_records(path)
    if not records:
        raise InterchangeError(f"{path}: no rows to import")
    parsed, skipped = [], 0
    for where, record in records:
        try:
            category = DEFAULT_CATEGORY
            if category_column is not None:
                if category_column not in record:
                    raise BadRow(f"missing category column '{category_column}' (columns here: "
                                 f"{', '.join(map(str, record))})")
                category = record[category_column]
                if not isinstance(category, str) or not category.strip():
                    raise BadRow(f"category column '{category_column}' must be non-empty text, "
                                 f"got {category!r}")
            pref = parse(record, seed)
        except BadRow as err:
            raise InterchangeError(f"{path}: {where}: {err} (format '{fmt}'; nothing was imported)") from None
        if pref is None:
            skipped += 1
        else:
            parsed.append((pref, category))
    return parsed, len(records), skipped


def build_rows(parsed: list[tuple[Preference, str]], file_name: str, source: str) -> dict[str, list[dict]]:
    """The prompts, candidates, pairs and labels rows of a file's preferences, each id once."""
    model_version = f"imported:{file_name}"
    generation_key = _key("imported", file_name)
    annotator = f"import:{file_name}"
    tables: dict[str, dict[str, dict]] = {name: {} for name in SCHEMAS}
    per_prompt: dict[str, int] = {}

    def candidate(pid: str, response: str) -> str:
        cid = _key(generation_key, pid, response)
        if cid not in tables["candidates"]:
            tables["candidates"][cid] = {
                "candidate_id": cid, "prompt_id": pid, "model_version": model_version,
                "generation_key": generation_key, "sample_index": per_prompt.get(pid, 0),
                "response": response, "finished": True, "num_tokens": len(response.split())}
            per_prompt[pid] = per_prompt.get(pid, 0) + 1
        return cid

    for pref, category in parsed:
        pid = prompt_id(pref.prompt)
        tables["prompts"].setdefault(pid, {"prompt_id": pid, "source": file_name, "category": category,
                                           "prompt": pref.prompt, "meta": None, "split": "train"})
        a, b = candidate(pid, pref.chosen), candidate(pid, pref.rejected)
        pair_id = _key(a, b)
        tables["pairs"].setdefault(pair_id, {"pair_id": pair_id, "prompt_id": pid, "candidate_a": a,
                                             "candidate_b": b, "generation_key": generation_key})
        lid = label_id(pair_id, source, annotator)
        tables["labels"].setdefault(lid, {"label_id": lid, "pair_id": pair_id, "source": source,
                                          "annotator": annotator, "choice": "a", "confidence": 1.0})
    return {name: list(rows.values()) for name, rows in tables.items()}


def _count(con, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]  # fetchall: result complete


def insert_new(store: Store, tables: dict[str, list[dict]]) -> dict[str, int]:
    """Insert rows whose primary key is new, all tables in one transaction; rows added per table."""
    added = {}
    with store.transaction() as con:
        for name, rows in tables.items():
            schema = SCHEMAS[name]
            columns = ", ".join(schema.names)
            before = _count(con, name)
            con.register("incoming", pa.Table.from_pylist(rows, schema=schema))
            con.execute(f"INSERT OR IGNORE INTO {name} ({columns}) SELECT {columns} FROM incoming")
            con.unregister("incoming")
            added[name] = _count(con, name) - before
    return added


def import_preferences(store: Store, path: str | Path, fmt: str, source: str = "human",
                       category_column: str | None = None, seed: int = 0) -> ImportReport:
    """Import one preference file into the store: all of it, or (on any bad row) none of it.

    `fmt` is 'trl', 'hh' or 'ultrafeedback' (see `formats`); the container follows the path
    (.jsonl/.json lines, .parquet, or a `datasets.save_to_disk` folder). `source` is the labels'
    source (one of the store's label sources); `category_column` names a column holding each
    prompt's category (default: 'imported'); `seed` fixes UltraFeedback's rejected draw."""
    return _import(store, Path(path), fmt, source, category_column, seed)[0]


def import_for_training(store: Store, path: str | Path, fmt: str, source: str = "human",
                        category_column: str | None = None, seed: int = 0) -> tuple[ImportReport, list[dict]]:
    """`import_preferences`, plus the file's preferences as rows of the label stage's preferences
    snapshot (with the ids the store got), so imported data can be trained on."""
    report, tables = _import(store, Path(path), fmt, source, category_column, seed)
    prompts = {row["prompt_id"]: row for row in tables["prompts"]}
    responses = {row["candidate_id"]: row["response"] for row in tables["candidates"]}
    rows = [{"pair_id": pair["pair_id"], "prompt_id": pair["prompt_id"],
             "prompt": prompts[pair["prompt_id"]]["prompt"],
             "category": prompts[pair["prompt_id"]]["category"],
             "chosen": responses[pair["candidate_a"]], "chosen_finished": True,
             "rejected": responses[pair["candidate_b"]], "rejected_finished": True, "source": source,
             "confidence": 1.0} for pair in tables["pairs"]]
    return report, rows


def _import(store: Store, path: Path, fmt: str, source: str, category_column: str | None,
            seed: int) -> tuple[ImportReport, dict[str, list[dict]]]:
    if source not in SOURCES:
        raise InterchangeError(f"{path}: source '{source}' is not a label source; use one of "
                               f"{', '.join(SOURCES)}")
    parsed, n_rows, skipped = parse_file(path, fmt, category_column, seed)
    tables = build_rows(parsed, path.name, source)
    added = insert_new(store, tables) if tables["pairs"] else dict.fromkeys(SCHEMAS, 0)
    report = ImportReport(path=str(path), fmt=fmt, rows=n_rows, preferences=len(tables["pairs"]),
                          skipped=skipped, duplicates=len(parsed) - len(tables["pairs"]),
                          new_prompts=added["prompts"], new_candidates=added["candidates"],
                          new_pairs=added["pairs"], new_labels=added["labels"])
    return report, tables
