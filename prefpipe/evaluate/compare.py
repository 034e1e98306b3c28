"""Compare the trained policy with its reference on held-out prompts."""
from __future__ import annotations

from collections import defaultdict

import torch

from prefpipe.evaluate.stats import mean_interval, win_rate
from prefpipe.models.formatting import response_batches
from prefpipe.models.logprobs import sequence_logprobs
from prefpipe.world.gold import judge, prefer
from prefpipe.world.prompts import WorldPrompt

SIDES, VERDICTS = ("policy", "reference"), ("well_formed", "correct", "flaws")
# The columns of gold_report's per-family rows (plots/eval_by_family.csv), even when there are none.
FAMILY_COLUMNS = ("family", "prompts", "win", *(f"{s}_{v}" for s in SIDES for v in VERDICTS))


@torch.no_grad()
def response_logprobs(model, tokenizer, prompts: list[str], responses: list[str],
                      finished: list[bool], max_length: int, batch_size: int = 64) -> list[float]:
    """Summed log-prob of each response under `model`."""
    model.eval()
    return [logp for batch in response_batches(tokenizer, prompts, responses, finished, max_length,
                                               batch_size)
            for logp in sequence_logprobs(model, batch).tolist()]


def sequence_kl(policy_logps: list[float], reference_logps: list[float]) -> dict[str, float]:
    """KL(π || π_ref) in nats per sequence, estimated on policy samples: E_y~π[log π(y) - log π_ref(y)].

    This is the k1 (unbiased) estimator; its interval comes from the per-sample spread."""
    mean, low, high = mean_interval([p - r for p, r in zip(policy_logps, reference_logps)])
    return {"kl_nats": mean, "kl_nats_low": low, "kl_nats_high": high}


def gold_report(prompts: list[WorldPrompt], policy: list[tuple[str, bool]],
                reference: list[tuple[str, bool]]) -> tuple[dict, list[dict]]:
    """Gold win rate of policy vs reference, and per-family quality of each side."""
    outcomes = [prefer(p, a, b) for p, a, b in zip(prompts, policy, reference)]
    report = win_rate(outcomes)
    by_family: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for prompt, outcome, pol, ref in zip(prompts, outcomes, policy, reference):
        family = by_family[prompt.family]
        family["win"].append(outcome)
        for side, (text, finished) in zip(SIDES, (pol, ref)):
            verdict = judge(prompt, text, finished)
            for key in VERDICTS:
                family[f"{side}_{key}"].append(float(getattr(verdict, key)))
    rows = []
    for name in sorted(by_family):
        values = by_family[name]
        rows.append({"family": name, "prompts": len(values["win"]),
                     **{k: sum(v) / len(v) for k, v in values.items()}})
    for side in SIDES:
        for key in VERDICTS:
            every = [v for fam in by_family.values() for v in fam[f"{side}_{key}"]]
            report[f"{side}_{key}"] = sum(every) / len(every)
        for family in ("arithmetic", "code"):
            if family in by_family:
                values = by_family[family][f"{side}_correct"]
                report[f"{side}_accuracy_{family}"] = sum(values) / len(values)
    return report, rows
