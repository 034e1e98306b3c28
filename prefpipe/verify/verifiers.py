"""Verifier rewards for checkable families: the arithmetic final answer and code run against tests.

Two paths. `verify` is the fast training reward (GRPO): it reads the last integer and walks the
returned expression's AST, never executing it. `checked_rewards` is the label stage's (through
`prefpipe.label.verifier.Verifier`): math answers go through sympy equivalence (`math_answer`) and
code is really run against its tests in the sandbox (`sandbox.run_many`), so it also judges code the
AST walker cannot read. Nothing here imports labeling, so policy training can use it alone."""
from __future__ import annotations

from collections.abc import Sequence

from prefpipe.verify.math_answer import math_reward
from prefpipe.verify.sandbox import SandboxLimits, run_many
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


def world_code_tests(prompt: WorldPrompt) -> list[str]:
    """``assert name(a, b) == expected`` for each fixed test input of a world code prompt."""
    name, expr = prompt.meta["name"], prompt.meta["expr"]
    return [f"assert {name}({a}, {b}) == {evaluate_expression(expr, a, b)}" for a, b in CODE_TEST_INPUTS]


def code_part(response: str) -> str:
    """The code of a response: everything from its first ``def`` (empty if there is none)."""
    start = response.find("def ")
    return response[start:] if start >= 0 else ""


def checked_rewards(items: Sequence[tuple[WorldPrompt, str, bool]], limits: SandboxLimits,
                    workers: int) -> list[float]:
    """Reward in [0, 1] per (prompt, response, finished); unfinished responses get 0. Math answers
    are compared with sympy; code runs against the world's tests in the sandbox (`workers` at once)."""
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
    for n, result in zip(job_items, run_many(jobs, limits, workers)):
        rewards[n] = result.reward
    return rewards
