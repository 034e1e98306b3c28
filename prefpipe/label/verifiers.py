"""Verifiers for checkable families: the arithmetic final answer and code run against tests.

Code is checked by walking the returned expression's AST, never by executing it (the sandboxed
subprocess runner for arbitrary code arrives with the labeling issue)."""
from __future__ import annotations

from prefpipe.label.types import Label, PairToLabel
from prefpipe.world.checks import CODE_CORE, UnsafeExpression, code_pass_fraction, final_number
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
