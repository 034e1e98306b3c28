"""Stage round: decide whether a round is due and snapshot what it starts from.

Runs every time (`always_changed`); its outputs persist between runs and are rewritten only when a
round is due: the generator (a copy of the `current` published policy, or of the SFT model before
any), the prompts due, and earlier rounds' labelled pairs with the human labels that arrived since.
Nothing new leaves every output as it was, so DVC skips every later stage, and the flow ends the run
there with the reason (prefpipe/rounds/plan.py says when a round is due).

Run: python -m tasks.round"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pyarrow as pa

from prefpipe.models.version import model_version
from prefpipe.rounds.history import PAIR_COLUMNS, with_human_labels
from prefpipe.rounds.plan import LabelsSeen, decide_round, round_prompts, round_seed
from prefpipe.store import Store, read_parquet, rows, write_parquet
from tasks import paths
from tasks._stage import report_exit, run_stage, write_json
from tasks.round_info import read_round_info

log = logging.getLogger("prefpipe")
SFT = "sft"  # the generator's version name before any version is published


def round_stage(params, store: Store) -> dict:
    registry = store.registry
    train = [r for r in rows(read_parquet(paths.PROMPTS)) if r["split"] == "train"]
    history = registry.rounds()
    count, digest = registry.human_labels_digest()
    decision = decide_round([r["prompt_id"] for r in train], registry.known_prompt_ids(),
                            history[-1] if history else None,
                            sum(r["status"] != "running" for r in history),
                            LabelsSeen(count, digest), params.rounds.iterations)
    log.info("%s", decision.reason)
    if not decision.due:
        report_exit(0, decision.reason, stop_run=True)
        return {"due": False, "round": decision.round}
    report_exit(0, decision.reason, run_title=f"round {decision.round}")
    if decision.resumed and _recorded_round() == decision.round:
        return {"due": True, "round": decision.round, "resumed": True}
    current = None if decision.resumed else registry.current()
    if decision.resumed:  # the round's own generator, even if `current` moved since it started
        version = history[-1]["generator_version"]
        current = None if version == SFT else registry.version(version)
    generator = Path(current["artifact_uri"]) / "policy" if current else paths.SFT_MODEL
    _copy_model(generator, paths.GENERATOR_MODEL)
    generator_hash = model_version(paths.GENERATOR_MODEL)
    prompts = round_prompts(train, decision.new_prompt_ids, params.rounds.replay_share, params.seed,
                            decision.round)
    earlier = with_human_labels(registry.pairs_before(decision.round),
                                registry.human_choices())
    write_parquet(pa.Table.from_pylist(prompts), paths.ROUND_PROMPTS)
    write_parquet(_pairs_table(earlier), paths.ROUND_HISTORY)
    info = {"round": decision.round, "generator_version": current["version"] if current else SFT,
            "generator_hash": generator_hash, "seed": round_seed(params.seed, decision.round),
            "reason": decision.reason}
    write_json(paths.ROUND_INFO, info)
    metrics = {"round": decision.round, "due": True, "prompts": len(prompts),
               "new_prompts": len(decision.new_prompt_ids), "new_human_labels": decision.new_labels,
               "earlier_pairs": len(earlier)}
    write_json(paths.METRICS / "round.json", metrics)
    registry.start_round(decision.round, info["generator_version"], generator_hash, digest,
                         len(decision.new_prompt_ids), decision.new_labels, decision.reason,
                         prompt_ids=[r["prompt_id"] for r in train],
                         flow_run_id=os.environ.get("PREFPIPE_RUN_ID", ""), labels_count=count)
    log.info("round %d samples from %s (%s) on %d prompts; %d labelled pairs from earlier rounds",
             decision.round, info["generator_version"], generator_hash, len(prompts), len(earlier))
    return metrics


def _recorded_round() -> int | None:
    try:
        return int(read_round_info()["round"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def _copy_model(source: Path, target: Path) -> None:
    """Copy a model folder whole: a killed copy never leaves half a generator."""
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: the generator's model folder is missing")
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)


def _pairs_table(pairs: list[dict]) -> pa.Table:
    if pairs:
        return pa.Table.from_pylist(pairs)
    return pa.table({c: pa.array([], pa.int64() if c == "round" else pa.float64() if c == "confidence"
                                  else pa.bool_() if c.startswith("finished") else pa.string())
                     for c in PAIR_COLUMNS})


if __name__ == "__main__":
    run_stage("round", round_stage, uses_torch=False)
