"""Params checked against your own prompts before any stage works (issue 15): what the labelers
and the policy algorithm the params choose need from the prompts, and whether these have it.

The embedded world has hidden facts (reference answers, tests, gold answers) that the verifier,
simulated annotators, the rule judge and GRPO read; prompts from `data.prompts` have none. Every
caller that loads params to work on them calls `check_against_data` right after `load_params`
(the stages, `prefpipe params`, `prefpipe run`), so a choice that cannot work fails with the key
to change instead of minutes later at `label` or `train_policy`.

    params = load_params(path)
    check_against_data(params, path)"""
from __future__ import annotations

from pathlib import Path

from prefpipe.config import Params, ParamsError
from prefpipe.config.label import NEEDS_WORLD, RULE_JUDGE_NEEDS_WORLD, USE_INSTEAD, needs_world
from prefpipe.config.model_refs import resolve
from prefpipe.data.readers import read_records
from prefpipe.vocab import JudgeBackend, Labeler


def check_against_data(params: Params, source: str | Path) -> None:
    """Raise ParamsError naming the key when data.prompts is your own file and the params choose
    something that needs the embedded world; nothing to check for the embedded world."""
    if params.embedded_data:
        return
    if params.embedded_model:
        raise ParamsError(f"{source}: model.policy: 'embedded' is trained on the embedded world's SFT "
                          "corpus, so it needs data.prompts 'embedded'; give your model's folder or hub id")
    if params.policy.algorithm == "grpo":
        raise ParamsError(f"{source}: policy.algorithm: 'grpo' trains on verifier rewards: "
                          f"{needs_world(Labeler.VERIFIER.value)}; use 'dpo' or 'ppo'")
    categories = prompt_categories(params, Path(source).resolve().parent)
    used = params.label.in_use(categories)
    for labeler, key in used.items():
        if labeler in NEEDS_WORLD:
            routed = sorted(c for c in categories if key == "label.routing."
                            + (c if c in params.label.routing else "default"))
            which = f" (your categories {routed})" if routed else ""
            raise ParamsError(f"{source}: {key}: '{labeler}' would label your prompts{which}, but "
                              f"{needs_world(labeler)}; use {USE_INSTEAD}")
    if Labeler.CRITIC in used and params.label.critic.judge == JudgeBackend.RULE:
        raise ParamsError(f"{source}: label.critic.judge: 'rule' would judge your prompts (through "
                          f"{used[Labeler.CRITIC]}), but {RULE_JUDGE_NEEDS_WORLD}")


def prompt_categories(params: Params, base: Path) -> set[str]:
    """The categories of the prompt file, as the prepare stage reads them (a missing one is
    'default'); rows prepare would reject are its to report."""
    path = resolve(params.data.prompts, base)
    column = params.data.category_column
    return {record.get(column) or "default" for _, record in read_records(path)
            if isinstance(record.get(column) or "default", str)}
