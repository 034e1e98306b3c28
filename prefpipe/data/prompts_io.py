"""Load prompts from Parquet, JSONL or a `datasets` folder, validating every row first.

A bad row is reported with its file and 1-based row number, and nothing of that file is used."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq


class DataError(ValueError):
    """A problem in the user's data; the message names the file, row and column."""


def read_records(path: str | Path) -> list[dict]:
    path = Path(path)
    if path.is_dir():
        return _read_datasets_folder(path)
    if path.suffix == ".parquet":
        try:
            return pq.read_table(path).to_pylist()
        except Exception as err:  # pyarrow raises several types for corrupt files
            raise DataError(f"{path}: not a readable Parquet file: {err}") from err
    if path.suffix in (".jsonl", ".json"):
        return _read_jsonl(path)
    raise DataError(f"{path}: unsupported format '{path.suffix}' (use .parquet, .jsonl or a "
                    "datasets folder saved with save_to_disk)")


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            records.append(None)  # keeps record numbers equal to line numbers
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: row {number}: not valid JSON ({err.msg})") from err
        if not isinstance(record, dict):
            raise DataError(f"{path}: row {number}: expected a JSON object, got "
                            f"{type(record).__name__}")
        records.append(record)
    return records


def _read_datasets_folder(path: Path) -> list[dict]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:
        raise DataError(f"{path}: not a datasets folder saved with save_to_disk: {err}") from err
    if isinstance(loaded, datasets.DatasetDict):
        loaded = loaded["train"] if "train" in loaded else next(iter(loaded.values()))
    return loaded.to_list()


def load_prompt_rows(path: str | Path, prompt_column: str, category_column: str) -> list[dict]:
    """[{'prompt', 'category'}] from the user's file; every row is checked before any is kept."""
    records = read_records(path)
    if not any(r is not None for r in records):
        raise DataError(f"{path}: no rows")
    rows, seen = [], set()
    for number, record in enumerate(records, start=1):
        if record is None:
            continue
        if prompt_column not in record:
            raise DataError(f"{path}: row {number}: missing column '{prompt_column}' "
                            f"(set data.prompt_column; columns here: {', '.join(record)})")
        prompt = record[prompt_column]
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"{path}: row {number}: column '{prompt_column}' must be non-empty "
                            f"text, got {prompt!r}")
        category = record.get(category_column) or "default"
        if not isinstance(category, str):
            raise DataError(f"{path}: row {number}: column '{category_column}' must be text, "
                            f"got {category!r}")
        prompt = prompt.strip()
        if prompt in seen:
            continue
        seen.add(prompt)
        rows.append({"prompt": prompt, "category": category})
    return rows
