"""Verifier rewards for checkable prompts: a final answer, or code run against tests.

Two paths. `verify` is the fast training reward (GRPO): for the embedded world it reads the last
integer and walks the returned expression's AST, never executing it. `checked_rewards` is the label
stage's (through `prefpipe.label.verifier.Verifier`): math answers go through sympy equivalence
(`math_answer`) and code is really run against its tests in the sandbox (`sandbox.run_many`), so it
also judges code the AST walker cannot read. Nothing here imports labeling, so policy training can
use it alone.

Checkable prompts are the embedded world's arithmetic and code families, and your own prompts that
carry a `Reference` (source not EMBEDDED; `catalog.to_checked_prompt`), whatever their category: an
'answer' is checked like arithmetic (sympy), 'tests' like code (the sandbox; the response's code is
its fenced blocks, else from its first ``def``). Both paths check your prompts the same way
(`training_rewards` batches them for GRPO)."""
from __future__ import annotations

import re
from collections.abc import Sequence

from prefpipe.verify.math_answer import math_reward
from prefpipe.verify.sandbox import SandboxLimits, run_many
from prefpipe.vocab import Reference
from prefpipe.world.checks import (
    CODE_CORE,
    UnsafeExpression,
    code_pass_fraction,
    evaluate_expression,
    final_number,
)
from prefpipe.world.content import CODE_TEST_INPUTS
from prefpipe.world.prompts import EMBEDDED, WorldPrompt

_FENCED = re.compile(r"```[^\n`]*\n(.*?)```", re.S)  # a fenced code block; group 1: its code


def verify(prompt: WorldPrompt, response: str, finished: bool) -> float:
    """Reward in [0, 1]: 1 if the final answer is right / the fraction of code tests passed. Your own
    prompts are checked as the label stage checks them (`checked_rewards`, default sandbox limits)."""
    if not finished:
        return 0.0
    if prompt.source != EMBEDDED:
        return checked_rewards([(prompt, response, finished)], SandboxLimits(), workers=1)[0]
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


def response_code(response: str) -> str:
    """The code of a response to one of your own prompts: its fenced code blocks (```...```), joined;
    without any, `code_part` (from its first ``def``), else the whole response."""
    blocks = _FENCED.findall(response)
    if blocks:
        return "\n\n".join(block.strip("\n") for block in blocks)
    return code_part(response) or response.strip()


def reference(prompt: WorldPrompt) -> tuple[str | None, list[str] | None]:
    """(reference answer, None) for a math prompt, (None, tests) for a code prompt: the world's
    arithmetic answer or code tests, or the `Reference` one of your prompts carries."""
    meta = prompt.meta
    if prompt.source != EMBEDDED:
        if meta.get(Reference.ANSWER) is not None:
            return str(meta[Reference.ANSWER]), None
        if meta.get(Reference.TESTS):
            return None, list(meta[Reference.TESTS])
        raise ValueError(f"prompt {prompt.prompt_id} (category '{prompt.family}', from {prompt.source}) "
                         "carries no reference answer or tests to verify against")
    if prompt.family == "arithmetic":
        return str(meta["answer"]), None
    if prompt.family == "code":
        return None, world_code_tests(prompt)
    raise ValueError(f"no verifier for category '{prompt.family}' (prompt {prompt.prompt_id}); "
                     "route it to another labeler in params.yaml label.routing")


def checked_rewards(items: Sequence[tuple[WorldPrompt, str, bool]], limits: SandboxLimits,
                    workers: int) -> list[float]:
    """Reward in [0, 1] per (prompt, response, finished); unfinished responses get 0. Math answers
    are compared with sympy; code runs against its tests in the sandbox (`workers` at once)."""
    rewards = [0.0] * len(items)
    jobs, job_items = [], []
    for n, (prompt, response, finished) in enumerate(items):
        answer, tests = reference(prompt)
        if not finished:
            continue
        if answer is not None:
            rewards[n] = math_reward(response, answer)
        elif code := (code_part(response) if prompt.source == EMBEDDED else response_code(response)):
            jobs.append((code, tests))
            job_items.append(n)
    for n, result in zip(job_items, run_many(jobs, limits, workers)):
        rewards[n] = result.reward
    return rewards


def training_rewards(items: Sequence[tuple[WorldPrompt, str, bool]], limits: SandboxLimits,
                     workers: int) -> list[float]:
    """GRPO's rewards per (prompt, response, finished): `verify` for the embedded world's prompts
    (nothing runs), `checked_rewards` for your own, in one batch (`workers` sandboxes at once)."""
    rewards = [verify(p, r, f) if p.source == EMBEDDED else 0.0 for p, r, f in items]
    mine = [n for n, (prompt, _, _) in enumerate(items) if prompt.source != EMBEDDED]
    for n, reward in zip(mine, checked_rewards([items[n] for n in mine], limits, workers)):
        rewards[n] = reward
    return rewards
