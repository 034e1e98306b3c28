"""Params checked against your own prompts before any stage works (issue 15): what the labelers
and the policy algorithm the params choose need from the prompts, and whether these have it.

The embedded world has hidden facts (reference answers, tests, gold answers) that the verifier,
simulated annotators, the rule judge and GRPO read; prompts from `data.prompts` have no gold, but
may carry a reference answer or tests (`data.answer_column`, `data.tests_column`), which is what the
verifier and GRPO need. Every caller that loads params to work on them calls `check_against_data`
right after `load_params` (the stages, `prefpipe params`, `prefpipe run`), so a choice that cannot
work fails with the key to change instead of minutes later at `label` or `train_policy`.

    params = load_params(path)
    check_against_data(params, path)"""
from __future__ import annotations

import logging
from pathlib import Path

from prefpipe.config import Params, ParamsError
from prefpipe.config.label import (
    NEEDS_WORLD,
    RULE_JUDGE_NEEDS_WORLD,
    USE_INSTEAD,
    needs_reference,
    needs_world,
)
from prefpipe.config.model_refs import resolve
from prefpipe.data.prompts_io import has_reference
from prefpipe.data.readers import read_records
from prefpipe.data.splits import check_splits
from prefpipe.vocab import JudgeBackend, Labeler

log = logging.getLogger("prefpipe")
Checkable = list[tuple[str, bool]]  # (category, carries an answer or tests) per prompt record


def check_against_data(params: Params, source: str | Path) -> None:
    """Raise ParamsError naming the key when data.prompts is your own file and the params choose
    something that needs the embedded world, or the verifier / GRPO where your prompts carry no
    answers or tests; nothing to check for the embedded world."""
    if params.embedded_data:
        return
    if params.embedded_model:
        raise ParamsError(f"{source}: model.policy: 'embedded' is trained on the embedded world's SFT "
                          "corpus, so it needs data.prompts 'embedded'; give your model's folder or hub id")
    prompts = prompt_references(params, Path(source).resolve().parent)
    categories = {category for category, _ in prompts}
    if params.policy.algorithm == "grpo":
        _check_grpo(params, source, prompts)
    used = params.label.in_use(categories)
    if Labeler.VERIFIER in used:
        _check_verifier(params, source, prompts)
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
    check_splits(params, source)


def _check_verifier(params: Params, source: str | Path, prompts: Checkable) -> None:
    """Each category routed to the verifier needs a prompt with an answer or tests; its prompts
    without are counted in a warning (their pairs go to label.verifier.undecided)."""
    routing, data = params.label.routing, params.data
    for category in sorted({category for category, _ in prompts}):
        key = category if category in routing else "default"
        if routing[key] != Labeler.VERIFIER:
            continue
        checked = [ok for c, ok in prompts if c == category]
        lacking = checked.count(False)
        if lacking == len(checked):
            raise ParamsError(
                f"{source}: label.routing.{key}: 'verifier' would label your prompts of category "
                f"'{category}', but none of its {len(checked)} carries "
                f"{needs_reference(data.answer_column, data.tests_column)}; add them, or use "
                f"{USE_INSTEAD}")
        if lacking:
            log.warning("%s: label.routing.%s: %d of the %d prompts of category '%s' carry no reference "
                        "answer or tests; the verifier leaves their pairs to label.verifier.undecided "
                        "('%s')", source, key, lacking, len(checked), category,
                        params.label.verifier.undecided)


def _check_grpo(params: Params, source: str | Path, prompts: Checkable) -> None:
    """GRPO trains on verifier rewards: some prompt of policy.grpo.categories needs an answer or tests."""
    categories, data = params.policy.grpo.categories, params.data
    if any(ok for category, ok in prompts if category in categories):
        return
    elsewhere = sorted({category for category, ok in prompts if ok})
    hint = (f" (yours that do are in categories {elsewhere}: set policy.grpo.categories)" if elsewhere
            else "")
    raise ParamsError(f"{source}: policy.algorithm: 'grpo' trains on verifier rewards, but none of your "
                      f"prompts in policy.grpo.categories {categories} carries "
                      f"{needs_reference(data.answer_column, data.tests_column)}{hint}; add them, or use "
                      "'dpo' or 'ppo'")


def prompt_references(params: Params, base: Path) -> Checkable:
    """(category, whether it carries an answer or tests) per record of the prompt file, as the
    prepare stage reads them (a missing category is 'default'); rows prepare would reject are its
    to report."""
    path = resolve(params.data.prompts, base)
    data = params.data
    out = []
    for _, record in read_records(path):
        category = record.get(data.category_column) or "default"
        if isinstance(category, str):
            out.append((category, has_reference(record, data.answer_column, data.tests_column)))
    return out


def prompt_categories(params: Params, base: Path) -> set[str]:
    """The categories of the prompt file, as the prepare stage reads them (a missing one is
    'default'); rows prepare would reject are its to report."""
    return {category for category, _ in prompt_references(params, base)}
