"""Stage evaluate: the policy against its SFT reference on held-out prompts.

Gold win rate with a 95% interval, sequence KL in nats, reward-model scores, length, diversity,
well-formed share and per-family accuracy. Run: python -m tasks.evaluate"""
from __future__ import annotations

import logging
import random

import pyarrow as pa

from prefpipe.config.schema import Params
from prefpipe.evaluate.compare import FAMILY_COLUMNS, gold_report, response_logprobs, sequence_kl
from prefpipe.evaluate.report import markdown_report
from prefpipe.evaluate.stats import win_rate
from prefpipe.models.generation import sample_responses, truncated_prompts, warn_truncated
from prefpipe.models.io import load_causal_lm, load_reward_model, load_tokenizer
from prefpipe.models.scoring import score_responses
from prefpipe.seeds import SeedPurpose, derive_seed
from prefpipe.store import Store, read_parquet, rows, write_parquet
from prefpipe.world.catalog import to_world_prompt
from prefpipe.world.corpus import PromptChoice, choose_prompts
from prefpipe.world.prompts import WorldPrompt
from tasks import paths
from tasks._stage import StageInputError, run_stage, write_csv, write_json

log = logging.getLogger("prefpipe")
REPORT_EXAMPLES = 12


def heldout_prompts(params: Params, seed: int) -> tuple[PromptChoice, bool]:
    """The held-out prompts to evaluate on (your own: each at most once; the embedded world's small
    families repeat by design), and whether they carry gold facts (the embedded world's do)."""
    heldout = [r for r in rows(read_parquet(paths.PROMPTS)) if r["split"] == "heldout"]
    items = [to_world_prompt(r) or WorldPrompt(r["prompt_id"], r["category"], r["prompt"], {})
             for r in heldout]
    if not items:
        raise StageInputError(f"{paths.PROMPTS}: no held-out prompts; raise data.heldout_fraction")
    choice = choose_prompts(items, params.evaluate.prompts, random.Random(seed),
                            repeats=params.embedded_data)
    if choice.capped:
        log.warning("evaluate.prompts %d > %d held-out prompts: evaluating each once (%d); raise "
                    "data.heldout_fraction for more", params.evaluate.prompts, choice.available,
                    len(choice.prompts))
    return choice, all(to_world_prompt(r) is not None for r in heldout)  # users' meta is no gold


def evaluate(params: Params, store: Store) -> dict:
    seed = derive_seed(params.seed, SeedPurpose.EVALUATION)  # held-out prompts and sampling
    choice, has_gold = heldout_prompts(params, seed)
    prompts = choice.prompts
    texts = [p.prompt for p in prompts]
    tokenizer = load_tokenizer(paths.SFT_MODEL, params.model.prompt_format)
    tokenizer.padding_side = "left"
    max_length = params.model.n_positions
    sides = {}
    for side, path in (("policy", paths.POLICY_MODEL), ("reference", paths.SFT_MODEL)):
        model = load_causal_lm(path)
        log.info("sampling %s responses to %d held-out prompts", side, len(texts))
        samples = sample_responses(model, tokenizer, texts, 1, params.evaluate.sampling, seed,
                                   max_length=max_length)
        sides[side] = {"model": model, "samples": samples}
    pol, ref = sides["policy"]["samples"], sides["reference"]["samples"]
    warn_truncated(truncated_prompts(pol), len(texts), max_length,  # both sides cut the same prompts
                   params.evaluate.sampling.max_new_tokens, "evaluate.sampling.max_new_tokens")
    pol_resp, pol_fin = [s.response for s in pol], [s.finished for s in pol]
    pol_logps = response_logprobs(sides["policy"]["model"], tokenizer, texts, pol_resp, pol_fin,
                                  max_length)
    ref_logps = response_logprobs(sides["reference"]["model"], tokenizer, texts, pol_resp, pol_fin,
                                  max_length)
    reward_model = load_reward_model(paths.REWARD_MODEL)
    rm = {side: score_responses(reward_model, tokenizer, texts, [s.response for s in ss],
                                [s.finished for s in ss], max_length)
          for side, ss in (("policy", pol), ("reference", ref))}
    metrics = {**choice.metrics(), **sequence_kl(pol_logps, ref_logps),
               "rm_win_rate": win_rate([1.0 if a > b else 0.0 if a < b else 0.5
                                        for a, b in zip(rm["policy"], rm["reference"])])["win_rate"]}
    for side, ss in (("policy", pol), ("reference", ref)):
        metrics[f"{side}_rm_score"] = sum(rm[side]) / len(rm[side])
        metrics[f"{side}_mean_tokens"] = sum(s.num_tokens for s in ss) / len(ss)
        metrics[f"{side}_distinct_share"] = len({(p, s.response) for p, s in zip(texts, ss)}) / len(ss)
    family_rows: list[dict] = []
    if has_gold:
        gold, family_rows = gold_report(prompts, [(s.response, s.finished) for s in pol],
                                        [(s.response, s.finished) for s in ref])
        metrics.update(gold)
    else:
        log.info("the held-out prompts carry no gold facts: no gold win rate or per-family accuracy "
                 "(%s keeps its header only)", paths.PLOTS / "eval_by_family.csv")
    samples_table = [{"prompt_id": p.prompt_id, "category": p.family, "prompt": p.prompt,
                      "policy_response": a.response, "policy_finished": a.finished,
                      "reference_response": b.response, "reference_finished": b.finished,
                      "policy_rm": ra, "reference_rm": rb, "log_ratio": lp - lr}
                     for p, a, b, ra, rb, lp, lr in zip(prompts, pol, ref, rm["policy"],
                                                        rm["reference"], pol_logps, ref_logps)]
    write_parquet(pa.Table.from_pylist(samples_table), paths.EVAL_SAMPLES)
    write_json(paths.METRICS / "evaluate.json", metrics)
    write_csv(paths.PLOTS / "eval_by_family.csv", family_rows, list(FAMILY_COLUMNS))
    paths.REPORT.parent.mkdir(parents=True, exist_ok=True)
    paths.REPORT.write_text(markdown_report(metrics, family_rows, samples_table[:REPORT_EXAMPLES]))
    log.info("report -> %s", paths.REPORT)
    return metrics


if __name__ == "__main__":
    run_stage("evaluate", evaluate)
