"""A built-in critic for the default world: scores both responses under the sampled principle.

It reads the world's own parse (the grammar `[opener] [restatement] [caveat] core [lecture]
[closing]` of `prefpipe.world.gold`) but weighs the pieces the way the principle would, so it is a
realistic, imperfect critic: under "acknowledges_uncertainty" it rewards the caveat that gold counts
as a flaw, under "harmless" refusing a harmful request outweighs everything and a lecture is a plus,
under "correct" style weighs half as much. With `verbosity_bias` it also likes long answers (the bias the seed
warns a verbose critic teaches). Deterministic: no randomness."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prefpipe.config.label import RULE_JUDGE_NEEDS_WORLD
from prefpipe.label.types import Comparison, Judgment
from prefpipe.world.content import CAVEATS, CLOSINGS, FILLER_OPENERS, LECTURE, REFUSAL, RESTATE
from prefpipe.world.gold import CONTENT_SCORE, judge
from prefpipe.world.prompts import WorldPrompt

MALFORMED_SCORE = -10.0  # below any well-formed response under every principle
FLAWS = ("filler", "restate", "caveat", "closing", "lecture")


@dataclass(frozen=True)
class Weights:
    """Score = content·w_content (w_harm on harmful prompts) - Σ flaw·w_flaw."""
    content: float = CONTENT_SCORE
    harm: float = CONTENT_SCORE
    filler: float = 1.0
    restate: float = 1.0
    caveat: float = 1.0
    closing: float = 1.0
    lecture: float = 1.0


DEFAULT_WEIGHTS = Weights()  # gold's own weighting, for principles the rule judge does not know
PRINCIPLE_WEIGHTS: dict[str, Weights] = {
    "helpful": Weights(closing=0.0),  # offering more help reads as helpful
    "honest": Weights(filler=0.5, restate=0.5, caveat=0.0, closing=0.5, lecture=0.5),
    "harmless": Weights(content=1.0, harm=6.0, filler=0.5, restate=0.5, caveat=0.5, closing=0.5,
                        lecture=-0.5),
    "acknowledges_uncertainty": Weights(caveat=-1.0),  # a hedge earns credit gold does not give
    "direct": Weights(filler=2.0, restate=2.0, caveat=1.5, closing=2.0, lecture=1.5),
    "correct": Weights(filler=0.5, restate=0.5, caveat=0.5, closing=0.5, lecture=0.5),  # substance first
}


@dataclass(frozen=True)
class Features:
    """What the world's parse finds in one response."""
    well_formed: bool
    content: float  # content quality in [0, 1] (right answer, code, topic; refusal of harm)
    flaws: frozenset[str]  # subset of FLAWS
    refusal: bool
    words: int


def parse(prompt: WorldPrompt, response: str, finished: bool) -> Features:
    """Parse `response` with the world's grammar; unfinished or unparseable -> not well formed."""
    words = len(response.split())
    verdict = judge(prompt, response, finished)
    if not verdict.well_formed:
        return Features(False, 0.0, frozenset(), False, words)
    text, flaws = response.strip(), set()
    for flaw, pieces in (("filler", FILLER_OPENERS), ("restate", (RESTATE.format(prompt=prompt.prompt),)),
                         ("caveat", CAVEATS)):
        for piece in pieces:
            if text.startswith(piece + " "):
                text = text[len(piece) + 1:]
                flaws.add(flaw)
                break
    suffixes = [("closing", CLOSINGS)] + ([("lecture", (LECTURE,))] if prompt.family == "harmful" else [])
    for flaw, pieces in suffixes:
        for piece in pieces:
            if text.endswith(" " + piece):
                text = text[: -len(piece) - 1]
                flaws.add(flaw)
                break
    content = (verdict.score + verdict.flaws) / CONTENT_SCORE  # gold: score = 3·content - flaws
    return Features(True, content, frozenset(flaws), text == REFUSAL, words)


def principle_score(features: Features, weights: Weights, family: str) -> float:
    """The response's score under one principle's weights (MALFORMED_SCORE if not well formed)."""
    if not features.well_formed:
        return MALFORMED_SCORE
    content_weight = weights.harm if family == "harmful" else weights.content
    return content_weight * features.content - sum(getattr(weights, flaw) for flaw in features.flaws)


def describe(features: Features) -> str:
    if not features.well_formed:
        return "malformed"
    parts = ["right" if features.content == 1.0 else "wrong" if features.content == 0.0
             else f"content {features.content:.2f}"]
    parts += [flaw for flaw in FLAWS if flaw in features.flaws]
    return "+".join(parts)


class RuleJudge:
    """P(first) = σ((s_first - s_second) / temperature + position_bias), with
    s = principle_score + verbosity_bias · words. Needs `Comparison.world` (a WorldPrompt)."""

    def __init__(self, temperature: float = 1.0, verbosity_bias: float = 0.0, position_bias: float = 0.0):
        if temperature <= 0:
            raise ValueError(f"rule judge temperature must be > 0, got {temperature}")
        self.temperature, self.verbosity_bias, self.position_bias = temperature, verbosity_bias, position_bias
        self.name = "rule"

    def judge_many(self, comparisons: Sequence[Comparison]) -> list[Judgment]:
        parsed: dict[tuple[str, str, bool], Features] = {}  # each response is seen in both orders

        def features(prompt: WorldPrompt, response: str, finished: bool) -> Features:
            key = (prompt.prompt_id, response, finished)
            if key not in parsed:
                parsed[key] = parse(prompt, response, finished)
            return parsed[key]

        out = []
        for n, comparison in enumerate(comparisons):
            prompt = comparison.world
            if not isinstance(prompt, WorldPrompt):
                raise ValueError(f"rule judge: comparison {n} has no embedded-world prompt (Comparison.world "
                                 f"is {type(prompt).__name__}): {RULE_JUDGE_NEEDS_WORLD}")
            weights = PRINCIPLE_WEIGHTS.get(comparison.principle.name, DEFAULT_WEIGHTS)
            first = features(prompt, comparison.first, comparison.first_finished)
            second = features(prompt, comparison.second, comparison.second_finished)
            s_first = principle_score(first, weights, prompt.family) + self.verbosity_bias * first.words
            s_second = principle_score(second, weights, prompt.family) + self.verbosity_bias * second.words
            logit = (s_first - s_second) / self.temperature + self.position_bias
            p_first = 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))
            out.append(Judgment(p_first, f"{describe(first)} {s_first:g} vs {describe(second)} "
                                         f"{s_second:g}"))
        return out
