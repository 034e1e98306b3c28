"""Read the records of a user's data file: JSON Lines, Parquet, or a `datasets` folder.

The one reader behind prompt files (`prompts_io`) and preference files (`interchange`). Each record
comes with where it sits, in the words error messages use: 'line N' (1-based, blank lines counted,
as an editor shows it) in JSON Lines, 'row index N' (0-based, as `datasets` and pandas index it) in
Parquet files and `datasets` folders. A file that can't be read raises `DataError` naming the file
and, for JSON Lines, the line: `FILE: line N: problem`.

    from prefpipe.data.readers import read_records
    for where, record in read_records("data/inputs/prompts.jsonl"): ...
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from prefpipe.errors import DataError

JSONL_SUFFIXES = (".jsonl", ".json")

Located = tuple[str, dict]  # (where: 'line N' | 'row index N', the record)


def read_records(path: str | Path) -> list[Located]:
    """(where, record) per record of the file or folder at `path`, in file order.

    The container follows the path: a folder is a `datasets.save_to_disk` folder, else the suffix
    (.jsonl/.json lines, .parquet). Blank JSON lines are skipped; a line that is not UTF-8 or not a
    JSON object is an error."""
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
        return _read_jsonl(path)
    raise DataError(f"{path}: unsupported container '{path.suffix}'; use .jsonl, .parquet or a "
                    "folder saved with datasets' save_to_disk")


def _read_jsonl(path: Path) -> list[Located]:
    records = []
    with path.open("rb") as lines:  # binary: lines end at b"\n" only, as JSON Lines says
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}: line {number}: not UTF-8 text ({err.reason} at byte "
                                f"{err.start}); save the file as UTF-8") from err
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {number}: not valid JSON ({err.msg} at column "
                                f"{err.colno}); fix the line and try again") from err
            if not isinstance(record, dict):
                raise DataError(f"{path}: line {number}: expected a JSON object, got "
                                f"{type(record).__name__}")
            records.append((f"line {number}", record))
    return records


def _read_datasets_folder(path: Path) -> list[dict]:
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
    return loaded.to_list()
