"""Stage generate: sample candidates per prompt due this round from the round's generator (the SFT
policy in round 1, then the last published version: tasks/round.py) and form pairs.

Run: python -m tasks.generate"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import random
from dataclasses import asdict

import pyarrow as pa

from prefpipe.models.generation import (
    on_sampling_device,
    sample_responses,
    truncated_prompts,
    warn_truncated,
)
from prefpipe.models.io import load_causal_lm, load_tokenizer
from prefpipe.models.version import model_version
from prefpipe.progress import Progress
from prefpipe.store import read_parquet, rows, write_parquet
from prefpipe.world.corpus import choose_prompts
from prefpipe.world.prompts import WorldPrompt
from tasks import paths
from tasks._stage import StageInputError, run_stage, write_json
from tasks.round_info import read_round_info

log = logging.getLogger("prefpipe")


def _key(*parts) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:16]


def generate(params, store) -> dict:
    gen = params.generate
    prompt_rows = rows(read_parquet(paths.ROUND_PROMPTS))
    as_items = [WorldPrompt(r["prompt_id"], r["category"], r["prompt"], {}) for r in prompt_rows]
    if not as_items:
        raise StageInputError(f"{paths.ROUND_PROMPTS}: no training prompts; lower data.heldout_fraction")
    info = read_round_info()
    seed = int(info["seed"])  # the round's: params.seed in round 1
    rng = random.Random(seed)
    # Families are drawn equally often. The embedded world's small families repeat prompts, each
    # draw sampled afresh; your own prompts are drawn without repeats, at most each once.
    choice = choose_prompts(as_items, gen.prompts, rng, repeats=params.embedded_data)
    if choice.capped:
        log.warning("generate.prompts %d > %d training prompts: each prompt used once (%d); raise "
                    "generate.pairs_per_prompt or generate.candidates_per_prompt for more pairs per "
                    "prompt", gen.prompts, choice.available, len(choice.prompts))
    chosen = choice.prompts
    version = model_version(paths.GENERATOR_MODEL)  # of the weights, tokenizer and config, not the files
    # a non-default prompt format changes the samples: it joins the key (auto keeps today's keys)
    formats = [] if params.model.prompt_format == "auto" else [params.model.prompt_format]
    generation_key = _key(version, json.dumps(asdict(gen), sort_keys=True), seed, *formats)
    tokenizer = load_tokenizer(paths.GENERATOR_MODEL, params.model.prompt_format)
    tokenizer.padding_side = "left"
    model = on_sampling_device(load_causal_lm(paths.GENERATOR_MODEL))  # a GPU where there is one
    log.info("round %d: sampling %d candidates for each of %d prompts from %s (model %s)", info["round"],
             gen.candidates_per_prompt, len(chosen), info["generator_version"], version)
    with Progress(len(chosen), "generate", "prompt") as progress:
        samples = sample_responses(model, tokenizer, [p.prompt for p in chosen],
                                   gen.candidates_per_prompt, gen.sampling, seed,
                                   progress=progress.update, max_length=params.model.n_positions)
    warn_truncated(truncated_prompts(samples), len(chosen), params.model.n_positions,
                   gen.sampling.max_new_tokens, "generate.sampling.max_new_tokens")
    candidates = []
    for s in samples:
        prompt = chosen[s.prompt_index]
        candidates.append({"candidate_id": _key(generation_key, s.prompt_index, s.sample_index),
                           "prompt_id": prompt.prompt_id, "model_version": version,
                           "generation_key": generation_key, "sample_index": s.sample_index,
                           "response": s.response, "finished": s.finished,
                           "num_tokens": s.num_tokens})
    pairs = form_pairs(candidates, gen.candidates_per_prompt, gen.pairs_per_prompt, seed)
    store.upsert("candidates", pa.Table.from_pylist(candidates))
    store.upsert("pairs", pa.Table.from_pylist(
        [{**{k: p[k] for k in ("pair_id", "prompt_id", "candidate_a", "candidate_b", "generation_key")},
          "round": info["round"]} for p in pairs]))
    by_prompt = {p.prompt_id: p for p in chosen}
    snapshot = [{**p, "category": by_prompt[p["prompt_id"]].family,
                 "prompt": by_prompt[p["prompt_id"]].prompt} for p in pairs]
    write_parquet(pa.Table.from_pylist(snapshot), paths.PAIRS)
    finished = sum(c["finished"] for c in candidates) / len(candidates)
    distinct = len({(c["prompt_id"], c["response"]) for c in candidates}) / len(candidates)
    log.info("%d candidates, %d pairs -> %s and the store", len(candidates), len(pairs), paths.PAIRS)
    metrics = {**choice.metrics(), "candidates": len(candidates), "pairs": len(pairs),
               "finished_share": finished, "distinct_share": distinct,
               "mean_tokens": sum(c["num_tokens"] for c in candidates) / len(candidates)}
    write_json(paths.METRICS / "generate.json", metrics)
    return metrics


def form_pairs(candidates: list[dict], per_prompt: int, pairs_per_prompt: int, seed: int) -> list[dict]:
    """Up to `pairs_per_prompt` pairs of distinct responses per prompt, drawn without repeats."""
    pairs = []
    for start in range(0, len(candidates), per_prompt):
        group = candidates[start: start + per_prompt]
        combos = [(a, b) for a, b in itertools.combinations(group, 2) if a["response"] != b["response"]]
        random.Random(_key(seed, group[0]["candidate_id"])).shuffle(combos)
        for a, b in combos[:pairs_per_prompt]:
            pairs.append({"pair_id": _key(a["candidate_id"], b["candidate_id"]),
                          "prompt_id": a["prompt_id"], "generation_key": a["generation_key"],
                          "candidate_a": a["candidate_id"], "candidate_b": b["candidate_id"],
                          "response_a": a["response"], "finished_a": a["finished"],
                          "response_b": b["response"], "finished_b": b["finished"]})
    return pairs


if __name__ == "__main__":
    run_stage("generate", generate)
