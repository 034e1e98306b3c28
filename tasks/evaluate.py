"""Stage evaluate: did it help, and did it stay honest? The policy against its SFT reference on
held-out prompts.

Win rates by every judge there is, each with a 95% interval: gold (embedded world), the critic as
an independent judge (`evaluate.judge`), the reward model (the proxy the policy was trained on),
and the main judge's length-controlled win rate. KL from the reference per sequence and per token;
reward-hacking and mode-collapse signals of both sides; pass@k on verifiable prompts; per-family
accuracy. Writes metrics/evaluate.json, the samples, plots, reports/evaluation.md and the
self-contained reports/evaluation.html with the gates' verdicts (the `gate` stage enforces them).
Run: python -m tasks.evaluate"""
from __future__ import annotations

import logging
import random

import pyarrow as pa

from prefpipe.config.schema import Params
from prefpipe.evaluate.assessment import SideResponses, honesty_metrics
from prefpipe.evaluate.compare import FAMILY_COLUMNS, gold_report, response_logprobs, sequence_kl
from prefpipe.evaluate.gates import check_gates
from prefpipe.evaluate.html_report import html_report, read_curves, write_html_report
from prefpipe.evaluate.judged import build_eval_judge, judge_outcomes, judge_win_rate
from prefpipe.evaluate.report import markdown_report
from prefpipe.evaluate.stats import win_rate
from prefpipe.evaluate.verifiable import is_verifiable, make_checker, verifiable_accuracy
from prefpipe.label.critic.constitution import load_constitution
from prefpipe.models.generation import sample_responses, truncated_prompts, warn_truncated
from prefpipe.models.io import load_causal_lm, load_reward_model, load_tokenizer
from prefpipe.models.scoring import score_responses
from prefpipe.seeds import SeedPurpose, derive_seed
from prefpipe.store import Store, read_parquet, rows, write_parquet
from prefpipe.verify.sandbox import SandboxLimits
from prefpipe.world.catalog import to_checked_prompt, to_world_prompt
from prefpipe.world.corpus import PromptChoice, choose_prompts
from prefpipe.world.gold import prefer
from prefpipe.world.prompts import WorldPrompt
from tasks import paths
from tasks._stage import StageInputError, run_stage, write_csv, write_json

log = logging.getLogger("prefpipe")
REPORT_EXAMPLES = 12
SIDES = ("policy", "reference")
CURVES = ("sft_loss", "reward_train", "policy_train")  # plots/<name>.csv drawn in the HTML report


def heldout_prompts(params: Params, seed: int) -> tuple[PromptChoice, bool, dict]:
    """The held-out prompts to evaluate on (your own: each at most once; the embedded world's small
    families repeat by design), whether they carry gold facts (the embedded world's do), and what
    the verifier checks of each (its reference answer or tests) by prompt id."""
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
    checks = {r["prompt_id"]: to_checked_prompt(r) for r in heldout}
    return choice, all(to_world_prompt(r) is not None for r in heldout), checks


def evaluate(params: Params, store: Store) -> dict:
    seed = derive_seed(params.seed, SeedPurpose.EVALUATION)  # held-out prompts and sampling
    choice, has_gold, checks = heldout_prompts(params, seed)
    prompts = choice.prompts
    texts = [p.prompt for p in prompts]
    tokenizer = load_tokenizer(paths.SFT_MODEL, params.model.prompt_format)
    tokenizer.padding_side = "left"
    max_length = params.model.n_positions
    models = {side: load_causal_lm(path) for side, path in
              (("policy", paths.POLICY_MODEL), ("reference", paths.SFT_MODEL))}
    samples = {}
    for side, model in models.items():
        log.info("sampling %s responses to %d held-out prompts", side, len(texts))
        samples[side] = sample_responses(model, tokenizer, texts, 1, params.evaluate.sampling, seed,
                                         max_length=max_length)
    pol, ref = samples["policy"], samples["reference"]
    warn_truncated(truncated_prompts(pol), len(texts), max_length,  # both sides cut the same prompts
                   params.evaluate.sampling.max_new_tokens, "evaluate.sampling.max_new_tokens")
    pol_resp, pol_fin = [s.response for s in pol], [s.finished for s in pol]
    logps = tuple(response_logprobs(models[side], tokenizer, texts, pol_resp, pol_fin, max_length)
                  for side in SIDES)
    reward_model = load_reward_model(paths.REWARD_MODEL)
    rm = {side: score_responses(reward_model, tokenizer, texts, [s.response for s in samples[side]],
                                [s.finished for s in samples[side]], max_length) for side in SIDES}
    outcomes = {"rm": [1.0 if a > b else 0.0 if a < b else 0.5
                       for a, b in zip(rm["policy"], rm["reference"])]}
    metrics = {**choice.metrics(), **sequence_kl(*logps),
               "rm_win_rate": win_rate(outcomes["rm"])["win_rate"]}
    for side in SIDES:
        ss = samples[side]
        metrics[f"{side}_rm_score"] = sum(rm[side]) / len(rm[side])
        metrics[f"{side}_mean_tokens"] = sum(s.num_tokens for s in ss) / len(ss)
        metrics[f"{side}_distinct_share"] = len({(p, s.response) for p, s in zip(texts, ss)}) / len(ss)
    family_rows = _judge(params, prompts, pol, ref, has_gold, seed, metrics, outcomes)
    metrics.update(honesty_metrics(
        texts, *(SideResponses([s.response for s in samples[side]],
                               [s.num_tokens for s in samples[side]]) for side in SIDES),
        logps, outcomes, params.evaluate.signals, seed))
    metrics.update(_pass_at_k(params, prompts, checks, models, tokenizer, max_length))
    samples_table = [{"prompt_id": p.prompt_id, "category": p.family, "prompt": p.prompt,
                      "policy_response": a.response, "policy_finished": a.finished,
                      "reference_response": b.response, "reference_finished": b.finished,
                      "policy_rm": ra, "reference_rm": rb, "log_ratio": lp - lr,
                      **{f"{judge}_outcome": o[n] for judge, o in outcomes.items()}}
                     for n, (p, a, b, ra, rb, lp, lr) in enumerate(zip(
                         prompts, pol, ref, rm["policy"], rm["reference"], *logps))]
    write_parquet(pa.Table.from_pylist(samples_table), paths.EVAL_SAMPLES)
    write_json(paths.METRICS / "evaluate.json", metrics)
    write_csv(paths.PLOTS / "eval_by_family.csv", family_rows, list(FAMILY_COLUMNS))
    write_csv(paths.PLOTS / "eval_lengths.csv",
              [{"side": side, "tokens": s.num_tokens} for side in SIDES for s in samples[side]])
    _reports(params, metrics, family_rows, samples_table, samples)
    return metrics


def _judge(params: Params, prompts: list[WorldPrompt], pol, ref, has_gold: bool, seed: int,
           metrics: dict, outcomes: dict) -> list[dict]:
    """Gold (embedded world) and the critic as an independent judge: their win rates into
    `metrics`, their per-prompt outcomes into `outcomes`; returns gold's per-family rows."""
    policy = [(s.response, s.finished) for s in pol]
    reference = [(s.response, s.finished) for s in ref]
    family_rows: list[dict] = []
    if has_gold:
        gold, family_rows = gold_report(prompts, policy, reference)
        metrics.update(gold)
        outcomes["gold"] = [prefer(p, a, b) for p, a, b in zip(prompts, policy, reference)]
    else:
        log.info("the held-out prompts carry no gold facts: no gold win rate or per-family accuracy "
                 "(%s keeps its header only)", paths.PLOTS / "eval_by_family.csv")
    critic = params.label.critic
    judge = build_eval_judge(params.evaluate.judge, critic, has_world=has_gold)
    if judge is not None:
        log.info("the critic judges policy vs reference on %d prompts, both orders", len(prompts))
        outcomes["judge"] = judge_outcomes(prompts, policy, reference, judge,
                                           load_constitution(critic.constitution or None), seed,
                                           critic.tie_margin)
        metrics.update(judge_win_rate(outcomes["judge"]))
    return family_rows


def _pass_at_k(params: Params, prompts: list[WorldPrompt], checks: dict, models: dict, tokenizer,
               max_length: int) -> dict:
    """pass@k of each side on the distinct verifiable held-out prompts (`evaluate.pass_at_k`)."""
    settings = params.evaluate.pass_at_k
    unique = dict.fromkeys(p.prompt_id for p in prompts)
    verifiable = [checks[pid] for pid in unique if checks.get(pid) and is_verifiable(checks[pid])]
    if not settings.samples or not verifiable:
        return {}
    limits = params.label.verifier
    checker = make_checker(SandboxLimits(wall_s=limits.timeout_s, cpu_s=limits.cpu_s,
                                         memory_mb=limits.memory_mb), limits.workers)
    n, seed = settings.samples, derive_seed(params.seed, SeedPurpose.PASS_AT_K)
    metrics = {}
    for side in SIDES:
        log.info("pass@k: %d samples of %s on each of %d verifiable prompts", n, side,
                 len(verifiable))
        ss = sample_responses(models[side], tokenizer, [p.prompt for p in verifiable], n,
                              params.evaluate.sampling, seed, max_length=max_length)
        per_prompt = [[(s.response, s.finished) for s in ss[i * n:(i + 1) * n]]
                      for i in range(len(verifiable))]
        accuracy = verifiable_accuracy(verifiable, per_prompt, settings.k, checker)
        metrics.update({f"{side}_{key}": value for key, value in accuracy.items()})
    return metrics


def _reports(params: Params, metrics: dict, family_rows: list[dict], samples_table: list[dict],
             samples: dict) -> None:
    """reports/evaluation.md and the self-contained reports/evaluation.html, with the verdicts the
    `gate` stage will give (the same pure check_gates)."""
    verdicts = [{"name": v.name, **v.to_dict()} for v in
                check_gates(metrics, params.evaluate.gates, params.evaluate.kl_budget)]
    paths.REPORT.parent.mkdir(parents=True, exist_ok=True)
    paths.REPORT.write_text(markdown_report(metrics, family_rows, samples_table[:REPORT_EXAMPLES],
                                            verdicts))
    lengths = {side: [s.num_tokens for s in samples[side]] for side in SIDES}
    curves = read_curves(paths.PLOTS / f"{name}.csv" for name in CURVES)
    page = html_report(metrics, verdicts, family_rows, samples_table, lengths, curves,
                       max_samples=REPORT_EXAMPLES)
    log.info("report -> %s and %s", paths.REPORT, write_html_report(paths.HTML_REPORT, page))


if __name__ == "__main__":
    run_stage("evaluate", evaluate)
