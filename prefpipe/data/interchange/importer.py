"""Import preference files (TRL, HH-RLHF, UltraFeedback; JSONL, Parquet or a `datasets` folder) into
the store, validating every row before anything is written.

Each preference becomes a prompt (source = the file name, split 'train'), two candidates
(model_version 'imported:<file>'), a pair (a = chosen) and a label (choice 'a', confidence 1.0,
annotator 'import:<file>'). Ids are content hashes, and rows whose id exists are left as they are,
so importing a file again adds nothing and a prompt the store already holds (say, an embedded world
prompt with its gold facts) keeps its row. All four tables are written in one transaction.

    from prefpipe.data.interchange import import_preferences
    report = import_preferences(Store("store/prefpipe.duckdb"), "hh.jsonl", "hh", source="human")
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from prefpipe.data.interchange.formats import PARSERS, BadRow, Preference, check_format
from prefpipe.data.readers import read_records
from prefpipe.errors import DataError
from prefpipe.store import Store
from prefpipe.store.keys import label_id
from prefpipe.vocab import LabelSource
from prefpipe.world.prompts import prompt_id

DEFAULT_CATEGORY = "imported"
TABLES = ("prompts", "candidates", "pairs", "labels")  # the store tables an import writes


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


# --- validate, then build rows -----------------------------------------------------------------

def parse_file(path: Path, fmt: str, category_column: str | None = None,
               seed: int = 0) -> tuple[list[tuple[Preference, str]], int, int]:
    """Every row parsed and checked: ([(preference, category)], rows read, rows skipped).

    The first bad row raises DataError naming the file, the row and the problem."""
    parse = PARSERS[check_format(fmt)]
    records = read_records(path)
    if not records:
        raise DataError(f"{path}: no rows to import")
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
            raise DataError(f"{path}: {where}: {err} (format '{fmt}'; nothing was imported)") from None
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
    tables: dict[str, dict[str, dict]] = {name: {} for name in TABLES}
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
    if source not in LabelSource.values():
        raise DataError(f"{path}: source '{source}' is not a label source; use one of "
                        f"{', '.join(LabelSource.values())}")
    parsed, n_rows, skipped = parse_file(path, fmt, category_column, seed)
    tables = build_rows(parsed, path.name, source)
    added = store.imports.insert_new(tables) if tables["pairs"] else dict.fromkeys(TABLES, 0)
    report = ImportReport(path=str(path), fmt=fmt, rows=n_rows, preferences=len(tables["pairs"]),
                          skipped=skipped, duplicates=len(parsed) - len(tables["pairs"]),
                          new_prompts=added["prompts"], new_candidates=added["candidates"],
                          new_pairs=added["pairs"], new_labels=added["labels"])
    return report, tables
