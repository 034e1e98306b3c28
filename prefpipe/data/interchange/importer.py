"""Import preference files (TRL, HH-RLHF, UltraFeedback; JSONL, a JSON array, Parquet or a
`datasets` folder) into the store, validating every row before anything is written.

Every row of the file is checked, and every bad one is reported in one error (file, line or row
index, and the column or key; `readers.bad_rows_error`); then nothing is written. A prompt or
response longer than `max_chars` (params `label.importing.max_chars`) is a bad row, or with
`truncate=True` is cut to that length and counted (`ImportReport.truncated`, which the caller
reports as a warning).

Each preference becomes a prompt (split 'train'), two candidates, a pair (a = chosen) and a label
(choice 'a', confidence 1.0, source `import` unless told otherwise, annotator `IMPORT_ANNOTATOR`).
Every id is a hash of content alone (prompt, chosen, rejected), never of the file, so the same
preferences under another file name, format or container add nothing; rows whose id exists are left
as they are, so a prompt the store already holds (say, an embedded world prompt with its gold facts)
keeps its row. The file is provenance: the first file a row came from is its prompt's `source`, its
candidates' `model_version` ('imported:<file>') and its label's rationale ('imported from <file>
line N'). All four tables are written in one transaction.

    from prefpipe.data.interchange import import_preferences
    report = import_preferences(Store("store/prefpipe.duckdb"), "hh.jsonl", "hh")
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from prefpipe.config.label import ImportingParams
from prefpipe.data.interchange.formats import PARSERS, BadRow, Preference, check_format
from prefpipe.data.readers import Unreadable, bad_rows_error, scan_records
from prefpipe.errors import DataError
from prefpipe.store import Store
from prefpipe.store.keys import label_id
from prefpipe.vocab import LabelSource
from prefpipe.world.prompts import prompt_id

DEFAULT_CATEGORY = "imported"
DEFAULT_SOURCE = LabelSource.IMPORT.value
MAX_CHARS = ImportingParams().max_chars  # label.importing.max_chars's default
TABLES = ("prompts", "candidates", "pairs", "labels")  # the store tables an import writes
# ':' is in no annotator id (annotate.rules), so an imported label is never an annotator's answer.
IMPORT_ANNOTATOR = "import:file"
FIELDS = (("prompt", "prompt"), ("chosen", "chosen response"), ("rejected", "rejected response"))


def _key(*parts) -> str:
    """The store's id: the first 16 hex digits of SHA-256 over the parts (as `tasks.generate`)."""
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:16]


GENERATION_KEY = _key("imported")  # one for every import: candidate ids depend on content alone


@dataclass(frozen=True)
class ImportReport:
    """What one import read and what it added (the `new_*` counts are 0 on a repeat import)."""
    path: str
    fmt: str
    source: str  # the labels' source
    rows: int  # records read (blank JSONL lines not counted)
    preferences: int  # distinct (prompt, chosen, rejected) preferences in the file
    skipped: int  # rows the format's rule leaves out (UltraFeedback ties, < 2 scored completions)
    duplicates: int  # rows repeating a preference seen earlier in the same file
    truncated: int  # rows with a prompt or response cut to max_chars (truncate=True): warn about them
    new_prompts: int
    new_candidates: int
    new_pairs: int
    new_labels: int
    pair_ids: tuple[str, ...] = field(default=(), repr=False)  # the file's pairs, in file order

    def summary(self) -> str:
        """One line for the CLI."""
        known = self.preferences - self.new_pairs
        return (f"{self.path} ({self.fmt}): {self.rows} rows, {self.preferences} preferences "
                f"({self.duplicates} repeated in the file, {self.skipped} skipped by the format's rule, "
                f"{known} already in the store); added {self.new_prompts} prompts, {self.new_candidates} "
                f"candidates, {self.new_pairs} pairs, {self.new_labels} labels (source '{self.source}')"
                + (f"; {self.truncated} rows cut to fit" if self.truncated else ""))


@dataclass(frozen=True)
class Parsed:
    """One good row: where it sits, its preference (cut to max_chars if asked) and category."""
    where: str
    pref: Preference
    category: str


@dataclass(frozen=True)
class ParsedFile:
    rows: list[Parsed]
    n_rows: int  # records read, bad ones included
    skipped: int
    truncated: int


# --- validate, then build rows -----------------------------------------------------------------

def parse_file(path: Path, fmt: str, category_column: str | None = None, seed: int = 0,
               max_chars: int = MAX_CHARS, truncate: bool = False) -> ParsedFile:
    """Every row parsed and checked. Any bad row (unreadable, wrong for the format, too long without
    `truncate`) makes one DataError listing them all, each with the file and its place."""
    parse = PARSERS[check_format(fmt)]
    scanned = scan_records(path)
    if not scanned:
        raise DataError(f"{path}: no rows to import")
    rows, problems, skipped, truncated = [], [], 0, 0
    for row in scanned:
        if isinstance(row, Unreadable):
            problems.append(f"{row.where}: {row.problem}")
            continue
        where, record = row
        try:
            pref, category = _parse_record(record, parse, category_column, seed)
            if pref is not None:
                pref, cut = _fit(pref, max_chars, truncate)
                truncated += cut
        except BadRow as err:
            problems.append(f"{where}: {err}")
            continue
        if pref is None:
            skipped += 1
        else:
            rows.append(Parsed(where, pref, category))
    if problems:
        raise bad_rows_error(path, problems, f" (format '{fmt}'; nothing was imported)")
    return ParsedFile(rows, len(scanned), skipped, truncated)


def _parse_record(record: dict, parse, category_column: str | None,
                  seed: int) -> tuple[Preference | None, str]:
    category = DEFAULT_CATEGORY
    if category_column is not None:
        if category_column not in record:
            raise BadRow(f"missing category column '{category_column}' (columns here: "
                         f"{', '.join(map(str, record))})")
        category = record[category_column]
        if not isinstance(category, str) or not category.strip():
            raise BadRow(f"category column '{category_column}' must be non-empty text, got {category!r}")
    return parse(record, seed), category


def _fit(pref: Preference, max_chars: int, truncate: bool) -> tuple[Preference, bool]:
    """The preference within `max_chars` per prompt and response: cut (and True) if `truncate`,
    else a BadRow naming the field and the limit."""
    long = [(name, label) for name, label in FIELDS if len(getattr(pref, name)) > max_chars]
    if not long:
        return pref, False
    if not truncate:
        name, label = long[0]
        raise BadRow(f"the {label} has {len(getattr(pref, name))} characters, over the limit of "
                     f"{max_chars} (label.importing.max_chars); shorten it, raise the limit, or "
                     "import with --truncate to cut it")
    cut = Preference(*(getattr(pref, name)[:max_chars] for name, _ in FIELDS))
    if cut.chosen == cut.rejected:
        raise BadRow(f"chosen and rejected are the same once cut to {max_chars} characters "
                     "(label.importing.max_chars); raise the limit or leave the row out")
    return cut, True


def build_rows(parsed: list[Parsed], file_name: str, source: str) -> dict[str, list[dict]]:
    """The prompts, candidates, pairs and labels rows of a file's preferences, each id once; ids
    from content, the file as provenance (see the module docstring)."""
    tables: dict[str, dict[str, dict]] = {name: {} for name in TABLES}
    per_prompt: dict[str, int] = {}

    def candidate(pid: str, response: str) -> str:
        cid = _key(GENERATION_KEY, pid, response)
        if cid not in tables["candidates"]:
            tables["candidates"][cid] = {
                "candidate_id": cid, "prompt_id": pid, "model_version": f"imported:{file_name}",
                "generation_key": GENERATION_KEY, "sample_index": per_prompt.get(pid, 0),
                "response": response, "finished": True, "num_tokens": len(response.split())}
            per_prompt[pid] = per_prompt.get(pid, 0) + 1
        return cid

    for row in parsed:
        pref = row.pref
        pid = prompt_id(pref.prompt)
        tables["prompts"].setdefault(pid, {"prompt_id": pid, "source": file_name, "category": row.category,
                                           "prompt": pref.prompt, "meta": None, "split": "train"})
        a, b = candidate(pid, pref.chosen), candidate(pid, pref.rejected)
        pair_id = _key(a, b)
        tables["pairs"].setdefault(pair_id, {"pair_id": pair_id, "prompt_id": pid, "candidate_a": a,
                                             "candidate_b": b, "generation_key": GENERATION_KEY})
        lid = label_id(pair_id, source, IMPORT_ANNOTATOR)
        tables["labels"].setdefault(lid, {"label_id": lid, "pair_id": pair_id, "source": source,
                                          "annotator": IMPORT_ANNOTATOR, "choice": "a", "confidence": 1.0,
                                          "rationale": f"imported from {file_name} {row.where}"})
    return {name: list(rows.values()) for name, rows in tables.items()}


def import_preferences(store: Store, path: str | Path, fmt: str, source: str = DEFAULT_SOURCE,
                       category_column: str | None = None, seed: int = 0, *, max_chars: int = MAX_CHARS,
                       truncate: bool = False) -> ImportReport:
    """Import one preference file into the store: all of it, or (on any bad row) none of it.

    `fmt` is 'trl', 'hh' or 'ultrafeedback' (see `formats`); the container follows the path
    (.jsonl lines, .json lines or array, .parquet, or a `datasets.save_to_disk` folder). `source`
    is the labels' source (a `LabelSource`; 'import' by default); `category_column` names a column
    holding each prompt's category (default: 'imported'); `seed` fixes UltraFeedback's rejected
    draw; `max_chars` bounds each prompt and response, cut to it with `truncate`."""
    return _import(store, Path(path), fmt, source, category_column, seed, max_chars, truncate)[0]


def import_for_training(store: Store, path: str | Path, fmt: str, source: str = DEFAULT_SOURCE,
                        category_column: str | None = None, seed: int = 0, *, max_chars: int = MAX_CHARS,
                        truncate: bool = False) -> tuple[ImportReport, list[dict]]:
    """`import_preferences`, plus the file's preferences as rows of the label stage's preferences
    snapshot (with the ids the store got), so imported data can be trained on."""
    report, tables = _import(store, Path(path), fmt, source, category_column, seed, max_chars, truncate)
    prompts = {row["prompt_id"]: row for row in tables["prompts"]}
    responses = {row["candidate_id"]: row["response"] for row in tables["candidates"]}
    rows = [{"pair_id": pair["pair_id"], "prompt_id": pair["prompt_id"],
             "prompt": prompts[pair["prompt_id"]]["prompt"],
             "category": prompts[pair["prompt_id"]]["category"],
             "chosen": responses[pair["candidate_a"]], "chosen_finished": True,
             "rejected": responses[pair["candidate_b"]], "rejected_finished": True, "source": source,
             "confidence": 1.0} for pair in tables["pairs"]]
    return report, rows


def _import(store: Store, path: Path, fmt: str, source: str, category_column: str | None, seed: int,
            max_chars: int, truncate: bool) -> tuple[ImportReport, dict[str, list[dict]]]:
    if source not in LabelSource.values():
        raise DataError(f"{path}: source '{source}' is not a label source; use one of "
                        f"{', '.join(LabelSource.values())}")
    if max_chars < 1:
        raise DataError(f"{path}: max_chars must be >= 1 (label.importing.max_chars), got {max_chars}")
    parsed = parse_file(path, fmt, category_column, seed, max_chars, truncate)
    tables = build_rows(parsed.rows, path.name, source)
    added = store.imports.insert_new(tables) if tables["pairs"] else dict.fromkeys(TABLES, 0)
    report = ImportReport(path=str(path), fmt=fmt, source=source, rows=parsed.n_rows,
                          preferences=len(tables["pairs"]), skipped=parsed.skipped,
                          duplicates=len(parsed.rows) - len(tables["pairs"]), truncated=parsed.truncated,
                          new_prompts=added["prompts"], new_candidates=added["candidates"],
                          new_pairs=added["pairs"], new_labels=added["labels"],
                          pair_ids=tuple(pair["pair_id"] for pair in tables["pairs"]))
    return report, tables
