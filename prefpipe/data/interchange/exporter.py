"""Export preferences as TRL, HH-RLHF or UltraFeedback-binarised rows, as JSONL or Parquet.

The preferences come from the label stage's snapshot (`data/preferences.parquet`) or from the
store's decisive labels. The file is written through `datasets.Dataset` (`to_json(lines=True)`,
`to_parquet`) to a temporary name and renamed, so a failed export leaves no half file.

    from prefpipe.data.interchange import export_preferences
    n = export_preferences(None, "out/prefs.jsonl", "trl", preferences_path="data/preferences.parquet")
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from prefpipe.data.interchange.formats import (
    Preference,
    check_format,
    render_hh,
    render_trl,
    render_ultrafeedback,
)
from prefpipe.errors import DataError
from prefpipe.store import Store
from prefpipe.world.prompts import prompt_id

if TYPE_CHECKING:
    import datasets

REQUIRED = ("prompt", "chosen", "rejected")

log = logging.getLogger("prefpipe")


def store_preferences(store: Store) -> list[dict]:
    """{prompt_id, prompt, chosen, rejected, confidence} per pair whose decisive labels have a
    majority (ties and 'both bad' are not decisive; an equal a/b vote is left out)."""
    out = []
    for row in store.exports.decisive_votes():
        a_wins = row["n_a"] > row["n_b"]
        out.append({"prompt_id": row["prompt_id"], "prompt": row["prompt"],
                    "chosen": row["response_a"] if a_wins else row["response_b"],
                    "rejected": row["response_b"] if a_wins else row["response_a"],
                    "confidence": row["conf_a"] if a_wins else row["conf_b"]})
    return out


def snapshot_preferences(path: str | Path) -> list[dict]:
    """The rows of a preferences snapshot (the label stage's `data/preferences.parquet`)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: missing; run the label stage (or give another preferences file)")
    table = pq.read_table(path)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing columns {missing}; a preferences snapshot has "
                        f"{', '.join(REQUIRED)} (columns here: {', '.join(table.column_names)})")
    rows = table.to_pylist()
    for i, row in enumerate(rows):
        for column in REQUIRED:
            if not isinstance(row[column], str):
                raise DataError(f"{path}: row index {i}: column '{column}' must be text, got "
                                f"{row[column]!r}")
        row.setdefault("prompt_id", None)
        row["prompt_id"] = row["prompt_id"] or prompt_id(row["prompt"])
        confidence = row.get("confidence")
        row["confidence"] = 1.0 if confidence is None else float(confidence)
    return rows


def render(rows: list[dict], fmt: str) -> list[dict]:
    """The format's output rows for {prompt, chosen, rejected, prompt_id, confidence} rows."""
    out = []
    for row in rows:
        pref = Preference(row["prompt"], row["chosen"], row["rejected"])
        if fmt == "trl":
            out.append(render_trl(pref))
        elif fmt == "hh":
            out.append(render_hh(pref))
        else:
            out.append(render_ultrafeedback(pref, row["prompt_id"], row["confidence"]))
    return out


def check_extension(out: Path) -> Path:
    if out.suffix not in (".jsonl", ".parquet"):
        raise DataError(f"{out}: unknown extension '{out.suffix}'; end the output name in "
                        ".jsonl or .parquet")
    return out


def features(fmt: str) -> datasets.Features:
    """The `datasets.Features` of a format's rows (fixed, so an empty export keeps its columns)."""
    import datasets  # imported here: it takes seconds, and only an export needs it

    text = datasets.Value("string")
    messages = datasets.List({"content": text, "role": text})
    if fmt == "trl":
        return datasets.Features({"prompt": text, "chosen": text, "rejected": text})
    if fmt == "hh":
        return datasets.Features({"chosen": text, "rejected": text})
    return datasets.Features({
        "prompt": text, "prompt_id": text, "chosen": messages, "rejected": messages, "messages": messages,
        "score_chosen": datasets.Value("float64"), "score_rejected": datasets.Value("float64")})


def write_rows(rows: list[dict], out: Path, features: datasets.Features) -> None:
    """Write through `datasets` by extension (.jsonl or .parquet); temp file then rename."""
    import datasets

    check_extension(out)
    dataset = datasets.Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    bars_were_on = not datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        if out.suffix == ".jsonl":
            dataset.to_json(str(tmp), lines=True, force_ascii=False)
        else:
            dataset.to_parquet(str(tmp))
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
        if bars_were_on:
            datasets.enable_progress_bars()


def export_preferences(store: Store | None, out: str | Path, fmt: str,
                       preferences_path: str | None = None) -> int:
    """Write preferences to `out` in `fmt` ('trl', 'hh', 'ultrafeedback'); returns the rows written.

    From `preferences_path` (a preferences snapshot) when given, else from the store's decisive
    labels. The container follows `out`'s extension: .jsonl (JSON Lines) or .parquet."""
    out = check_extension(Path(out))
    check_format(fmt)
    if preferences_path is not None:
        rows = snapshot_preferences(preferences_path)
    elif store is not None:
        rows = store_preferences(store)
    else:
        raise DataError(f"{out}: nothing to export from; pass a store or preferences_path "
                        "(e.g. data/preferences.parquet)")
    exportable = [r for r in rows if r["chosen"].strip() and r["rejected"].strip()]
    if len(exportable) < len(rows):  # e.g. a model that answered with nothing; no format carries that
        log.warning("%s: left out %d preferences with an empty response", out, len(rows) - len(exportable))
    write_rows(render(exportable, fmt), out, features(fmt))
    return len(exportable)
