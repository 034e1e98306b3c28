"""Import preference files (TRL, HH-RLHF, UltraFeedback; JSONL, a JSON array, Parquet or a
`datasets` folder) into the store, a batch of rows at a time, validating every row before anything
is written.

The file is read and checked BATCH_ROWS rows at a time (`readers.iter_record_batches`), and each
good batch, ids and all, is staged in an Arrow file beside the store, marked with the file's firsts
(which prompt, candidate and pair the file gives for the first time: `batches.FileFirsts`, 8 bytes
an id); only when every row is good are the staged batches written (`store.imports.batched`), so
memory stays flat in the file's size.
Every bad row is reported in one error (file, line or row index, and the column or key;
`readers.bad_rows_error`); then nothing is written. A prompt or
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
line N'). Each staged batch writes its rows of the four tables in one transaction: a process killed
part way leaves the batches before it, and importing the file again completes it (adding only
what is missing).

    from prefpipe.data.interchange import import_preferences
    report = import_preferences(Store("store/prefpipe.duckdb"), "hh.jsonl", "hh")
"""
from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from prefpipe.config.label import ImportingParams
from prefpipe.data.interchange.batches import FileFirsts, preference_rows, word_count
from prefpipe.data.interchange.formats import PARSERS, BadRow, Preference, check_format
from prefpipe.data.readers import Unreadable, bad_rows_error, iter_record_batches
from prefpipe.errors import DataError
from prefpipe.store import Store
from prefpipe.store.import_batches import BATCH_COLUMNS, ImportSpec
from prefpipe.store.keys import label_id
from prefpipe.vocab import LabelSource
from prefpipe.world.prompts import prompt_id

DEFAULT_CATEGORY = "imported"
DEFAULT_SOURCE = LabelSource.IMPORT.value
MAX_CHARS = ImportingParams().max_chars  # label.importing.max_chars's default
# ':' is in no annotator id (annotate.rules), so an imported label is never an annotator's answer.
IMPORT_ANNOTATOR = "import:file"
FIELDS = (("prompt", "prompt"), ("chosen", "chosen response"), ("rejected", "rejected response"))
BATCH_ROWS = 5000  # rows read, checked and staged at a time
WRITE_ROWS = 20000  # staged rows written to the store per transaction (fewer, larger commits)
BATCH_TYPES = {"seq": pa.int64(), "tokens_a": pa.int32(), "tokens_b": pa.int32(), "sample_a": pa.int32(),
               "sample_b": pa.int32(), "new_prompt": pa.bool_(), "new_pair": pa.bool_()}  # the rest: text
BATCH_SCHEMA = pa.schema([(name, BATCH_TYPES.get(name, pa.string())) for name in BATCH_COLUMNS])


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


@dataclass
class Tally:
    """What the batches of one file added up to so far."""
    rows: int = 0  # records read, bad ones included
    good: int = 0  # rows parsed into a preference
    skipped: int = 0
    truncated: int = 0
    problems: list[str] = field(default_factory=list)  # 'where: what', in file order


# --- validate, then build rows -----------------------------------------------------------------

def parse_file(path: Path, fmt: str, category_column: str | None = None, seed: int = 0,
               max_chars: int = MAX_CHARS, truncate: bool = False) -> ParsedFile:
    """Every row parsed and checked. Any bad row (unreadable, wrong for the format, too long without
    `truncate`) makes one DataError listing them all, each with the file and its place."""
    parse, tally, rows = PARSERS[check_format(fmt)], Tally(), []
    for records in iter_record_batches(path):
        rows += parse_batch(records, parse, tally, category_column, seed, max_chars, truncate)
    check_parsed(path, fmt, tally)
    return ParsedFile(rows, tally.rows, tally.skipped, tally.truncated)


def parse_batch(records: list, parse, tally: Tally, category_column: str | None = None, seed: int = 0,
                max_chars: int = MAX_CHARS, truncate: bool = False) -> list[Parsed]:
    """The good rows of one batch of `scan_records` output; the bad ones go to `tally.problems`."""
    rows = []
    for row in records:
        tally.rows += 1
        if isinstance(row, Unreadable):
            tally.problems.append(f"{row.where}: {row.problem}")
            continue
        where, record = row
        try:
            pref, category = _parse_record(record, parse, category_column, seed)
            if pref is not None:
                pref, cut = _fit(pref, max_chars, truncate)
                tally.truncated += cut
        except BadRow as err:
            tally.problems.append(f"{where}: {err}")
            continue
        if pref is None:
            tally.skipped += 1
        else:
            rows.append(Parsed(where, pref, category))
    tally.good += len(rows)
    return rows


def check_parsed(path: Path, fmt: str, tally: Tally) -> None:
    """Raise the file's DataError, if any: no rows at all, or every bad row in one message."""
    if not tally.rows:
        raise DataError(f"{path}: no rows to import")
    if tally.problems:
        raise bad_rows_error(path, tally.problems, f" (format '{fmt}'; nothing was imported)")


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


def batch_table(parsed: list[Parsed], first_seq: int, source: str, firsts: FileFirsts) -> pa.Table:
    """One batch of a file's rows as the store's batched import takes them (`BATCH_COLUMNS`):
    ids from content (see the module docstring), `seq` their place among the file's good rows, and
    which of them are the file's firsts (`firsts`, which has seen the file's earlier batches).
    Column by column (the ids as `_key` and `label_id` make them, inlined: the hashing of a 500K-row
    file is a loop per row)."""
    sha256, key = hashlib.sha256, GENERATION_KEY
    prompts = [row.pref.prompt for row in parsed]
    chosen = [row.pref.chosen for row in parsed]
    rejected = [row.pref.rejected for row in parsed]
    pids = [prompt_id(text) for text in prompts]
    a = [sha256(f"{key}:{pid}:{text}".encode()).hexdigest()[:16] for pid, text in zip(pids, chosen)]
    b = [sha256(f"{key}:{pid}:{text}".encode()).hexdigest()[:16] for pid, text in zip(pids, rejected)]
    pair_ids = [sha256(f"{x}:{y}".encode()).hexdigest()[:16] for x, y in zip(a, b)]
    columns = {"seq": range(first_seq, first_seq + len(parsed)), "row_where": [row.where for row in parsed],
               "prompt_id": pids, "category": [row.category for row in parsed], "prompt": prompts,
               "candidate_a": a, "chosen": chosen, "tokens_a": [word_count(text) for text in chosen],
               "candidate_b": b, "rejected": rejected, "tokens_b": [word_count(text) for text in rejected],
               "pair_id": pair_ids, "label_id": [label_id(pid, source, IMPORT_ANNOTATOR) for pid in pair_ids]}
    arrays = {name: pa.array(values, BATCH_SCHEMA.field(name).type) for name, values in columns.items()}
    arrays |= firsts.mark(columns)  # the category: the one the file first gave the prompt
    return pa.table({name: arrays[name] for name in BATCH_COLUMNS}, schema=BATCH_SCHEMA)


def import_preferences(store: Store, path: str | Path, fmt: str, source: str = DEFAULT_SOURCE,
                       category_column: str | None = None, seed: int = 0, *, max_chars: int = MAX_CHARS,
                       truncate: bool = False) -> ImportReport:
    """Import one preference file into the store: all of it, or (on any bad row) none of it.

    `fmt` is 'trl', 'hh' or 'ultrafeedback' (see `formats`); the container follows the path
    (.jsonl lines, .json lines or array, .parquet, or a `datasets.save_to_disk` folder). `source`
    is the labels' source (a `LabelSource`; 'import' by default); `category_column` names a column
    holding each prompt's category (default: 'imported'); `seed` fixes UltraFeedback's rejected
    draw; `max_chars` bounds each prompt and response, cut to it with `truncate`."""
    return _import(store, Path(path), fmt, source, category_column, seed, max_chars, truncate)


def import_for_training(store: Store, path: str | Path, fmt: str, write: Callable[[pa.Table], None],
                        source: str = DEFAULT_SOURCE, category_column: str | None = None, seed: int = 0,
                        *, max_chars: int = MAX_CHARS, truncate: bool = False) -> ImportReport:
    """`import_preferences`, and the file's preferences, as rows of the label stage's preferences
    snapshot (with the ids the store got; each pair once, in file order), handed to `write` a
    batch at a time (an Arrow table: pair_id, prompt_id, prompt, category, chosen, chosen_finished,
    rejected, rejected_finished, source, confidence) so imported data can be trained on."""
    return _import(store, Path(path), fmt, source, category_column, seed, max_chars, truncate, write)


def _import(store: Store, path: Path, fmt: str, source: str, category_column: str | None, seed: int,
            max_chars: int, truncate: bool, write: Callable[[pa.Table], None] | None = None
            ) -> ImportReport:
    """Check every row of the file, staging the good ones (ids and all) in an Arrow file beside the
    store; then, if none was bad, hand the staged batches to the store one at a time."""
    if source not in LabelSource.values():
        raise DataError(f"{path}: source '{source}' is not a label source; use one of "
                        f"{', '.join(LabelSource.values())}")
    if max_chars < 1:
        raise DataError(f"{path}: max_chars must be >= 1 (label.importing.max_chars), got {max_chars}")
    parse, tally, firsts = PARSERS[check_format(fmt)], Tally(), FileFirsts()
    with tempfile.TemporaryDirectory(prefix=".import-", dir=store.path.parent) as folder:
        staged = Path(folder) / "rows.arrow"
        with pa.OSFile(str(staged), "wb") as sink, pa.ipc.new_file(sink, BATCH_SCHEMA) as stage:
            for records in iter_record_batches(path, BATCH_ROWS):
                first = tally.good
                parsed = parse_batch(records, parse, tally, category_column, seed, max_chars, truncate)
                if parsed and not tally.problems:  # after a bad row, only the checking goes on
                    stage.write_table(batch_table(parsed, first, source, firsts))
        check_parsed(path, fmt, tally)
        spec = ImportSpec(path.name, source, GENERATION_KEY, IMPORT_ANNOTATOR)
        with store.imports.batched(spec) as writer, pa.OSFile(str(staged)) as handle:
            for batch in _staged(pa.ipc.open_file(handle), WRITE_ROWS):
                writer.add(batch)
                if write is not None and (rows := preference_rows(batch, source)).num_rows:
                    write(rows)
            added = writer.finish()
    preferences = firsts.pair_count()
    return ImportReport(path=str(path), fmt=fmt, source=source, rows=tally.rows, preferences=preferences,
                        skipped=tally.skipped, duplicates=tally.good - preferences,
                        truncated=tally.truncated, new_prompts=added["prompts"],
                        new_candidates=added["candidates"], new_pairs=added["pairs"],
                        new_labels=added["labels"], pair_ids=firsts.pair_ids())


def _staged(reader: pa.ipc.RecordBatchFileReader, rows: int) -> Iterator[pa.Table]:
    """The staged batches, read one at a time (not memory-mapped), in tables of about `rows`."""
    group: list[pa.RecordBatch] = []
    for i in range(reader.num_record_batches):
        group.append(reader.get_batch(i))
        if sum(batch.num_rows for batch in group) >= rows:
            yield pa.Table.from_batches(group)
            group = []
    if group:
        yield pa.Table.from_batches(group)
