"""Load prompts from Parquet, JSONL or a `datasets` folder, validating every row first.

A bad row is reported with its file and place ('line N' in JSONL, 'row index N' otherwise; see
`readers`), and nothing of that file is used."""
from __future__ import annotations

from pathlib import Path

from prefpipe.data.readers import read_records
from prefpipe.errors import DataError

__all__ = ["DataError", "load_prompt_rows"]


def load_prompt_rows(path: str | Path, prompt_column: str, category_column: str) -> list[dict]:
    """[{'prompt', 'category'}] from the user's file; every row is checked before any is kept."""
    records = read_records(path)
    if not records:
        raise DataError(f"{path}: no rows")
    rows, seen = [], set()
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
        if prompt in seen:
            continue
        seen.add(prompt)
        rows.append({"prompt": prompt, "category": category})
    return rows
