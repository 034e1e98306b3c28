"""Stage label: route each pair to a labeler, store the labels, snapshot the preferences.

Run: python -m tasks.label"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict

import pyarrow as pa

from prefpipe.label.preferences import label_report, to_preferences
from prefpipe.label.route import label_pairs, labeler_for
from prefpipe.label.types import Label, PairToLabel
from prefpipe.store import read_parquet, rows, write_parquet
from prefpipe.world.catalog import to_world_prompt
from tasks import paths
from tasks._stage import StageInputError, run_stage, write_json

log = logging.getLogger("prefpipe")
LABEL_FIELDS = ("pair_id", "source", "annotator", "choice", "confidence", "principle", "rationale")


def label(params, store) -> dict:
    pairs = rows(read_parquet(paths.PAIRS))
    prompts = {r["prompt_id"]: to_world_prompt(r) for r in rows(read_parquet(paths.PROMPTS))}
    missing_gold = sorted({p["category"] for p in pairs if prompts.get(p["prompt_id"]) is None})
    if missing_gold:
        routed = {c: labeler_for(c, params.label.routing) for c in missing_gold}
        raise StageInputError(f"label.routing sends categories {routed} to labelers that need the "
                         "embedded world's gold answers; your prompts have none. The human and "
                         "AI-critic labelers arrive with issue #4.")
    to_label = [PairToLabel(p["pair_id"], p["prompt_id"], p["category"], p["response_a"],
                            p["finished_a"], p["response_b"], p["finished_b"]) for p in pairs]
    labels = label_pairs(to_label, prompts, params.label, params.seed)
    table = pa.Table.from_pylist([
        {"label_id": _label_id(lab), **{k: asdict(lab)[k] for k in LABEL_FIELDS}} for lab in labels])
    store.upsert("labels", table)
    write_parquet(table, paths.LABELS)
    by_pair = {lab.pair_id: lab for lab in labels}
    preferences = to_preferences(pairs, by_pair)
    write_parquet(pa.Table.from_pylist(preferences), paths.PREFERENCES)
    report = {"labels": len(labels), "preferences": len(preferences),
              **label_report(pairs, by_pair, prompts)}
    log.info("%d labels, %d decisive preferences -> %s", len(labels), len(preferences),
             paths.PREFERENCES)
    write_json(paths.METRICS / "label.json", report)
    return report


def _label_id(label: Label) -> str:
    return hashlib.sha256(f"{label.pair_id}:{label.source}:{label.annotator}".encode()).hexdigest()[:16]


if __name__ == "__main__":
    run_stage("label", label)
