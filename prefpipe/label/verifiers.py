"""Verifiers for checkable families: the arithmetic final answer and code run against tests.

Two paths. `verify` is the fast training reward (GRPO): it reads the last integer and walks the
returned expression's AST, never executing it. `Verifier` is the label stage's: math answers go
through sympy equivalence (`math_answer`) and code is really run against its tests in the sandbox
(`sandbox.run_many`), so it also judges code the AST walker cannot read."""
from __future__ import annotations

from collections.abc import Sequence

from prefpipe.label.math_answer import math_reward
from prefpipe.label.sandbox import SandboxLimits, run_many
from prefpipe.label.types import Label, PairToLabel
from prefpipe.world.checks import (
    CODE_CORE,
    UnsafeExpression,
    code_pass_fraction,
    evaluate_expression,
    final_number,
)
from prefpipe.world.content import CODE_TEST_INPUTS
from prefpipe.world.prompts import WorldPrompt


def verify(prompt: WorldPrompt, response: str, finished: bool) -> float:
    """Reward in [0, 1]: 1 if the final answer is right / the fraction of code tests passed."""
    if not finished:
        return 0.0
    if prompt.family == "arithmetic":
        return float(final_number(response) == prompt.meta["answer"])
    if prompt.family == "code":
        code = response[response.find("def "):] if "def " in response else ""
        match = CODE_CORE.match(code.strip())
        if not match or match.group(1) != prompt.meta["name"]:
            return 0.0
        try:
            return code_pass_fraction(match.group(2), prompt.meta["expr"])
        except UnsafeExpression:
            return 0.0
    raise ValueError(f"no verifier for category '{prompt.family}' (prompt {prompt.prompt_id})")


def verifier_label(pair: PairToLabel, prompt: WorldPrompt) -> Label | None:
    """A label when the two responses verify differently, else None (the verifier can't tell)."""
    reward_a = verify(prompt, pair.response_a, pair.finished_a)
    reward_b = verify(prompt, pair.response_b, pair.finished_b)
    if reward_a == reward_b:
        return None
    return Label(pair.pair_id, "verifier", f"verifier:{prompt.family}",
                 "a" if reward_a > reward_b else "b", 1.0,
                 rationale=f"verified reward {reward_a:g} vs {reward_b:g}")


def world_code_tests(prompt: WorldPrompt) -> list[str]:
    """``assert name(a, b) == expected`` for each fixed test input of a world code prompt."""
    name, expr = prompt.meta["name"], prompt.meta["expr"]
    return [f"assert {name}({a}, {b}) == {evaluate_expression(expr, a, b)}" for a, b in CODE_TEST_INPUTS]


def code_part(response: str) -> str:
    """The code of a response: everything from its first ``def`` (empty if there is none)."""
    start = response.find("def ")
    return response[start:] if start >= 0 else ""


class Verifier:
    """The label stage's verifier: sympy for math answers, the sandbox for code."""

    def __init__(self, limits: SandboxLimits, workers: int) -> None:
        self.limits, self.workers = limits, workers

    def rewards(self, items: Sequence[tuple[WorldPrompt, str, bool]]) -> list[float]:
        """Reward in [0, 1] per (prompt, response, finished); unfinished responses get 0."""
        rewards = [0.0] * len(items)
        jobs, job_items = [], []
        for n, (prompt, response, finished) in enumerate(items):
            if prompt.family not in ("arithmetic", "code"):
                raise ValueError(f"no verifier for category '{prompt.family}' (prompt {prompt.prompt_id}); "
                                 "route it to another labeler in params.yaml label.routing")
            if not finished:
                continue
            if prompt.family == "arithmetic":
                rewards[n] = math_reward(response, str(prompt.meta["answer"]))
            elif code := code_part(response):
                jobs.append((code, world_code_tests(prompt)))
                job_items.append(n)
        for n, result in zip(job_items, run_many(jobs, self.limits, self.workers)):
            rewards[n] = result.reward
        return rewards

    def label(self, pairs: Sequence[PairToLabel], prompts: dict[str, WorldPrompt]) -> list[Label | None]:
        """Per pair, a 'verifier' Label for the better-verified response, or None on equal rewards."""
        items = []
        for pair in pairs:
            if pair.prompt_id not in prompts:
                raise KeyError(f"pair {pair.pair_id} names prompt {pair.prompt_id}, which is not among the "
                               "prompts given; rebuild the prompts table or drop the pair")
            prompt = prompts[pair.prompt_id]
            items += [(prompt, pair.response_a, pair.finished_a), (prompt, pair.response_b, pair.finished_b)]
        rewards = self.rewards(items)
        labels: list[Label | None] = []
        for n, pair in enumerate(pairs):
            reward_a, reward_b = rewards[2 * n], rewards[2 * n + 1]
            if reward_a == reward_b:
                labels.append(None)
                continue
            labels.append(Label(pair.pair_id, "verifier", f"verifier:{prompts[pair.prompt_id].family}",
                                "a" if reward_a > reward_b else "b", 1.0,
                                rationale=f"verified reward {reward_a:g} vs {reward_b:g}"))
        return labels
