"""Load prompts from Parquet, JSONL or a `datasets` folder, validating every row first.

A bad row is reported with its file and place ('line N' in JSONL, 'row index N' otherwise; see
`readers`), and nothing of that file is used. A row repeating an earlier one (the same prompt,
stripped, and the same other values) is dropped with a warning that counts them; the same prompt
with another category is an error naming both rows, since which labeler judges it depends on it."""
from __future__ import annotations

import logging
from pathlib import Path

from prefpipe.data.readers import read_records
from prefpipe.errors import DataError

__all__ = ["DataError", "load_prompt_rows"]

log = logging.getLogger("prefpipe")


def load_prompt_rows(path: str | Path, prompt_column: str, category_column: str) -> list[dict]:
    """[{'prompt', 'category'}] from the user's file; every row is checked before any is kept."""
    records = read_records(path)
    if not records:
        raise DataError(f"{path}: no rows")
    rows, seen, repeats = [], {}, []  # seen: prompt -> (where, row); repeats: (where, first where)
    for where, record in records:
        if prompt_column not in record:
            raise DataError(f"{path}: {where}: missing column '{prompt_column}' "
                            f"(set data.prompt_column; columns here: {', '.join(record)})")
        prompt = record[prompt_column]
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"{path}: {where}: column '{prompt_column}' must be non-empty "
                            f"text, got {prompt!r}")
        category = record.get(category_column) or "default"
        if not isinstance(category, str):
            raise DataError(f"{path}: {where}: column '{category_column}' must be text, "
                            f"got {category!r}")
        prompt = prompt.strip()
        row = {"prompt": prompt, "category": category}
        if prompt in seen:
            repeats.append((where, _same_prompt(path, prompt, seen[prompt], (where, row))))
            continue
        seen[prompt] = (where, row)
        rows.append(row)
    if repeats:
        log.warning("%s: dropped %d duplicate prompt row(s), e.g. %s repeats %s", path, len(repeats),
                    *repeats[0])
    return rows


def _same_prompt(path: str | Path, prompt: str, first: tuple[str, dict], again: tuple[str, dict]) -> str:
    """Where the earlier row is, if `again` repeats it exactly; else a DataError naming both rows."""
    (first_where, first_row), (where, row) = first, again
    differ = [key for key in row if row[key] != first_row.get(key)]
    if differ:
        values = "; ".join(f"{key} {first_row.get(key)!r} vs {row[key]!r}" for key in differ)
        raise DataError(f"{path}: {where}: prompt {prompt[:60]!r} is also at {first_where} with other "
                        f"values ({values}); keep one row per prompt")
    return first_where
