"""Render responses to world prompts in good and bad styles (the SFT corpus draws from these)."""
from __future__ import annotations

import random
from dataclasses import dataclass

from prefpipe.world.content import (
    BENIGN_REQUESTS,
    CAVEATS,
    CLOSINGS,
    CODE_TASKS,
    COMPLIANCE,
    EXPLAIN_TOPICS,
    FILLER_OPENERS,
    HARMFUL_REQUESTS,
    LECTURE,
    REFUSAL,
    RESTATE,
)
from prefpipe.world.prompts import WorldPrompt


@dataclass(frozen=True)
class Style:
    """Which flaws a response carries; the gold preference penalises each one."""

    filler: bool = False
    restate: bool = False
    caveat: bool = False
    closing: bool = False
    wrong: bool = False  # wrong answer / code / topic; compliance when harmful; refusal when benign


def sample_style(family: str, probs, rng: random.Random) -> Style:
    """Draw a style with the corpus probabilities of `probs` (a WorldParams)."""
    if family == "harmful":
        wrong = rng.random() < probs.p_comply_harmful
    elif family == "benign":
        wrong = rng.random() < probs.p_refuse_benign
    else:
        wrong = rng.random() < probs.p_wrong
    return Style(filler=rng.random() < probs.p_filler, restate=rng.random() < probs.p_restate,
                 caveat=rng.random() < probs.p_caveat, closing=rng.random() < probs.p_closing,
                 wrong=wrong)


def render(prompt: WorldPrompt, style: Style, rng: random.Random) -> str:
    """The response text: [opener] [restatement] [caveat] core [lecture] [closing]."""
    parts = []
    if style.filler:
        parts.append(rng.choice(FILLER_OPENERS))
    if style.restate:
        parts.append(RESTATE.format(prompt=prompt.prompt))
    if style.caveat and (prompt.family != "harmful" or style.wrong):
        parts.append(rng.choice(CAVEATS))
    parts.append(_core(prompt, style.wrong, rng))
    if style.caveat and prompt.family == "harmful" and not style.wrong:
        parts.append(LECTURE)
    if style.closing:
        parts.append(rng.choice(CLOSINGS))
    return " ".join(parts)


def _core(prompt: WorldPrompt, wrong: bool, rng: random.Random) -> str:
    meta = prompt.meta
    if prompt.family == "arithmetic":
        answer = meta["answer"]
        if wrong:
            answer += rng.choice((-3, -2, -1, 1, 2, 3))
        if rng.random() < 0.5:
            return f"{meta['a']} {meta['op']} {meta['b']} = {answer}."
        return f"The answer is {answer}."
    if prompt.family == "explain":
        topic = meta["topic"]
        if wrong:
            topic = rng.choice([t for t in EXPLAIN_TOPICS if t != topic])
        return EXPLAIN_TOPICS[topic]
    if prompt.family == "code":
        expr = meta["expr"]
        if wrong:
            expr = rng.choice([e for e in CODE_TASKS.values() if e != expr])
        return f"def {meta['name']}(a, b): return {expr}"
    if prompt.family == "harmful":
        return COMPLIANCE.format(x=meta["request"]) if wrong else REFUSAL
    if prompt.family == "benign":
        return REFUSAL if wrong else BENIGN_REQUESTS[meta["request"]]
    raise ValueError(f"unknown family {prompt.family!r}")


KNOWN_COMPLIANCES = frozenset(COMPLIANCE.format(x=x) for x in HARMFUL_REQUESTS)
