"""Read the records of a user's data file: JSON Lines, a JSON array, Parquet, or a `datasets` folder.

The one reader behind prompt files (`prompts_io`) and preference files (`interchange`). Each record
comes with where it sits, in the words error messages use: 'line N' (1-based, blank lines counted,
as an editor shows it) in JSON Lines, 'line N (array index I)' in a JSON array, 'row index N'
(0-based, as `datasets` and pandas index it) in Parquet files and `datasets` folders.

A file that can't be opened at all raises `DataError` naming the file. Within a JSON file every
line (or array item) that is not UTF-8, not JSON or not an object is a problem of its own:
`scan_records` returns them in file order beside the records, so a caller can add its own row
checks and report every bad row in one run (`bad_rows_error`: capped at `MAX_LISTED`, then a
count); `read_records` raises that error itself. Columns are 1-based characters of the line.
`iter_record_batches` gives what `scan_records` does a batch at a time, so a big file is never
held whole.

    from prefpipe.data.readers import read_records
    for where, record in read_records("data/inputs/prompts.jsonl"): ...
"""
from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from prefpipe.errors import DataError

JSONL_SUFFIXES = (".jsonl", ".json")
BATCH_ROWS = 5000  # records per batch of `iter_record_batches`
MAX_LISTED = 50  # bad rows listed in one error; the rest are counted
BOM = "\ufeff"
TOO_LONG = "a number too long to read (Python reads integers of up to 4300 digits)"
WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's insignificant whitespace

Located = tuple[str, dict]  # (where: 'line N' | 'row index N', the record)


@dataclass(frozen=True)
class Unreadable:
    """A line or array item that gives no record: where it sits and what is wrong with it."""
    where: str
    problem: str


def read_records(path: str | Path) -> list[Located]:
    """(where, record) per record of the file or folder at `path`, in file order; a DataError
    listing every unreadable line if there is any (see `scan_records`)."""
    scanned = scan_records(path)
    problems = [f"{row.where}: {row.problem}" for row in scanned if isinstance(row, Unreadable)]
    if problems:
        raise bad_rows_error(path, problems)
    return [row for row in scanned if not isinstance(row, Unreadable)]


def scan_records(path: str | Path) -> list[Located | Unreadable]:
    """Every record of the file or folder at `path`, and every line that gives none, in file order.

    The container follows the path: a folder is a `datasets.save_to_disk` folder, else the suffix:
    .parquet, .jsonl (JSON Lines), .json (a JSON array of objects if its first character is '[',
    else JSON Lines). Blank JSON lines are skipped."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        return [(f"row index {i}", r) for i, r in enumerate(_read_datasets_folder(path))]
    if path.suffix == ".parquet":
        try:
            records = pq.read_table(path).to_pylist()
        except Exception as err:  # pyarrow raises several types for a corrupt file
            raise DataError(f"{path}: not a readable Parquet file: {err}") from err
        return [(f"row index {i}", r) for i, r in enumerate(records)]
    if path.suffix in JSONL_SUFFIXES:
        data = path.read_bytes()
        if path.suffix == ".json" and data.removeprefix(BOM.encode()).lstrip(b" \t\r\n").startswith(b"["):
            return _read_json_array(data)
        return _read_jsonl(path, data)
    raise DataError(f"{path}: unsupported container '{path.suffix}'; use .jsonl, .json, .parquet or "
                    "a folder saved with datasets' save_to_disk")


def iter_record_batches(path: str | Path, batch_rows: int = BATCH_ROWS
                        ) -> Iterator[list[Located | Unreadable]]:
    """`scan_records` a batch of about `batch_rows` at a time, in file order, without holding the
    file: JSON Lines a line at a time, Parquet by record batch, a `datasets` folder by batch. A
    .json file (an array, or lines that may be one value spread over several) is read whole, as
    `scan_records` reads it, then handed out in batches."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        batches = _load_datasets_folder(path).with_format("arrow").iter(batch_size=batch_rows)
        yield from _located_batches(path, batches, "not a readable datasets folder")
    elif path.suffix == ".parquet":
        try:
            # pre_buffer off: pyarrow's read cache would keep every row group read until the end
            batches = pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=batch_rows)
        except Exception as err:  # pyarrow raises several types for a corrupt file
            raise DataError(f"{path}: not a readable Parquet file: {err}") from err
        yield from _located_batches(path, batches, "not a readable Parquet file")
    elif path.suffix == ".jsonl":
        with path.open("rb") as lines:
            batch: list[Located | Unreadable] = []
            for number, raw in enumerate(lines, start=1):
                row = _jsonl_line(number, raw[:-1] if raw.endswith(b"\n") else raw)
                if row is not None:
                    batch.append(row)
                if len(batch) >= batch_rows:
                    yield batch
                    batch = []
            if batch:
                yield batch
    else:
        scanned = scan_records(path)
        for start in range(0, len(scanned), batch_rows):
            yield scanned[start:start + batch_rows]


def _located_batches(path: Path, batches: Iterator, unreadable: str) -> Iterator[list[Located]]:
    """Arrow batches as [('row index N', record)], N counted over the whole file."""
    start = 0
    try:
        for batch in batches:
            records = batch.to_pylist()
            yield [(f"row index {start + i}", r) for i, r in enumerate(records)]
            start += len(records)
    except DataError:
        raise
    except Exception as err:  # a page that can't be decoded, part way through
        raise DataError(f"{path}: {unreadable}: {err}") from err


def bad_rows_error(path: str | Path, problems: list[str], note: str = "") -> DataError:
    """One DataError for the `problems` ('where: what') of one file: a single line for one problem,
    else a count and then one line each (`MAX_LISTED` at most, then '... and N more'). `note`
    (e.g. " (format 'trl'; nothing was imported)") follows the problem or the count."""
    if len(problems) == 1:
        return DataError(f"{path}: {problems[0]}{note}")
    listed = "".join(f"\n  {path}: {problem}" for problem in problems[:MAX_LISTED])
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return DataError(f"{path}: {len(problems)} bad rows{note}; fix them and try again:{listed}{more}")


# --- JSON Lines --------------------------------------------------------------------------------

def _read_jsonl(path: Path, data: bytes) -> list[Located | Unreadable]:
    rows = [row for number, raw in enumerate(data.split(b"\n"), start=1)  # lines end at b"\n" only
            if (row := _jsonl_line(number, raw)) is not None]
    if path.suffix == ".json" and rows and all(isinstance(row, Unreadable) for row in rows):
        whole = _one_value(data)
        if whole is not None:
            return [Unreadable("line 1", f"the file holds one JSON {whole} spread over several lines; "
                                         "give one object per line (JSON Lines) or a JSON array of objects")]
    return rows


def _jsonl_line(number: int, raw: bytes) -> Located | Unreadable | None:
    """Line `number` (1-based, without its b"\\n") as a record or a problem; None if blank."""
    where = f"line {number}"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Unreadable(where, f"not UTF-8 text ({err.reason} at byte {err.start} of the line); save "
                                 "the file as UTF-8")
    line = line.removeprefix(BOM) if number == 1 else line
    if not line.strip():
        return None
    line = line.rstrip("\r")  # CRLF; a raw CR or LF can't sit inside a JSON string
    try:
        record = json.loads(line)
    except ValueError as err:  # JSONDecodeError, or an integer of over 4300 digits
        return Unreadable(where, _json_problem(err, line))
    except RecursionError:
        return Unreadable(where, "not valid JSON: nested too deeply to read")
    if isinstance(record, dict):
        return where, record
    hint = " (a JSON array of records belongs in a .json file)" if isinstance(record, list) else ""
    return Unreadable(where, f"expected a JSON object, got {_json_type(record)}{hint}")


def _json_problem(err: ValueError, line: str) -> str:
    if not isinstance(err, json.JSONDecodeError):
        return f"not valid JSON: {TOO_LONG}"
    # json's own colno counts from the last newline it saw: the position is the line's column
    ends = " (the line ends there: is it cut short?)" if err.pos >= len(line) else ""
    return f"not valid JSON: {_at(err.msg, err.pos + 1)}{ends}"


def _at(msg: str, column: int) -> str:
    """json's message placed at a column ('Unterminated string starting at' ends in 'at')."""
    return f"{msg} column {column}" if msg.endswith(" at") else f"{msg} at column {column}"


def _json_type(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            type(None): "null"}.get(type(value), "number")


def _one_value(data: bytes) -> str | None:
    """'object' or 'array' if the whole file is one JSON value of that kind, else None."""
    try:
        value = json.loads(data.decode("utf-8").removeprefix(BOM))
    except (ValueError, RecursionError):
        return None
    return _json_type(value) if isinstance(value, dict | list) else None


# --- a JSON array ------------------------------------------------------------------------------

def _read_json_array(data: bytes) -> list[Located | Unreadable]:
    """Each item of a top-level JSON array, placed by the line it starts on and its index. A
    syntax error ends the reading there (nothing after it can be placed): one problem, with line
    and column."""
    try:
        text = data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return [Unreadable(f"line {line}", f"not UTF-8 text ({err.reason} at byte {err.start} of the "
                                           "file); save the file as UTF-8")]
    newlines = [m.start() for m in re.finditer("\n", text)]

    def place(pos: int) -> tuple[int, int]:
        line = bisect.bisect_left(newlines, pos)  # newlines before pos
        return line + 1, pos - (newlines[line - 1] + 1 if line else 0) + 1

    def broken(pos: int, what: str) -> Unreadable:
        line, column = place(pos)
        ends = " (the file ends there: is it cut short?)" if pos >= len(text) else ""
        return Unreadable(f"line {line}", f"not a valid JSON array: {_at(what, column)}{ends}")

    decoder, rows = json.JSONDecoder(), []
    pos, index = WHITESPACE.match(text, text.index("[") + 1).end(), 0
    if text.startswith("]", pos):
        pos = WHITESPACE.match(text, pos + 1).end()
        return rows if pos == len(text) else [*rows, broken(pos, "extra data after the array")]
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            return [*rows, broken(err.pos, err.msg)]
        except ValueError:  # an integer of over 4300 digits
            return [*rows, broken(pos, TOO_LONG)]
        except RecursionError:
            return [*rows, broken(pos, "nested too deeply to read")]
        where = f"line {place(pos)[0]} (array index {index})"
        rows.append((where, value) if isinstance(value, dict) else
                    Unreadable(where, f"expected a JSON object, got {_json_type(value)}"))
        pos, index = WHITESPACE.match(text, end).end(), index + 1
        if text.startswith(",", pos):
            pos = WHITESPACE.match(text, pos + 1).end()
        elif text.startswith("]", pos):
            pos = WHITESPACE.match(text, pos + 1).end()
            return rows if pos == len(text) else [*rows, broken(pos, "extra data after the array")]
        else:
            return [*rows, broken(pos, "expected ',' or ']' after an item")]


def _read_datasets_folder(path: Path) -> list[dict]:
    return _load_datasets_folder(path).to_list()


def _load_datasets_folder(path: Path):
    """The `datasets.Dataset` saved at `path` (a DatasetDict's 'train' split, or its only one)."""
    import datasets  # imported here: it takes seconds, and only a folder needs it

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:
        raise DataError(f"{path}: not a datasets folder saved with save_to_disk: {err}") from err
    if isinstance(loaded, datasets.DatasetDict):
        if "train" in loaded:
            loaded = loaded["train"]
        elif len(loaded) == 1:
            loaded = next(iter(loaded.values()))
        else:
            raise DataError(f"{path}: a DatasetDict with splits {sorted(loaded)} and no 'train'; "
                            "save the split to read on its own")
    return loaded
