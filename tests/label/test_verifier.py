"""The verifier labeler: a 'verifier' label for the better-verified response, none on a tie."""
from __future__ import annotations

import pytest

from prefpipe.label.types import PairToLabel
from prefpipe.label.verifier import Verifier
from prefpipe.verify.sandbox import SandboxLimits
from prefpipe.world.prompts import all_prompts

PROMPTS = {p.prompt: p for p in all_prompts(5)}
ADD = PROMPTS["What is 3 plus 4?"]
CODE = PROMPTS["Write a function g(a, b) that returns the larger of a and b."]
BY_ID = {p.prompt_id: p for p in (ADD, CODE)}
VERIFIER = Verifier(SandboxLimits(wall_s=4.0, cpu_s=1.0), workers=2)


def test_label():
    pairs = [PairToLabel("p1", ADD.prompt_id, "arithmetic", "The answer is 8.", True, "3 + 4 = 7.", True),
             PairToLabel("p2", CODE.prompt_id, "code", "def g(a, b): return max(a, b)", True,
                         "def g(a, b): return a + b", True),
             PairToLabel("p3", ADD.prompt_id, "arithmetic", "The answer is 7.", True,
                         "The answer is 7.", True)]
    first, second, tied = VERIFIER.label(pairs, BY_ID)
    assert (first.choice, first.source, first.annotator, first.confidence) == (
        "b", "verifier", "verifier:arithmetic", 1.0)
    assert (second.choice, second.annotator) == ("a", "verifier:code")
    assert second.rationale == "verified reward 1 vs 0.166667"
    assert tied is None


def test_label_names_a_missing_prompt():
    pair = PairToLabel("p9", "nope", "code", "x", True, "y", True)
    with pytest.raises(KeyError, match="p9"):
        VERIFIER.label([pair], BY_ID)
