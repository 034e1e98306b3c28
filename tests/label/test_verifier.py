"""The verifier labeler: a 'verifier' label for the better-verified response, none on a tie."""
from __future__ import annotations

import pytest

from prefpipe.label.types import PairToLabel
from prefpipe.label.verifier import Verifier
from prefpipe.verify.sandbox import SandboxLimits
from prefpipe.world.prompts import WorldPrompt, all_prompts

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


def test_label_user_prompts_by_their_answer_and_tests():
    """Your own prompts: a math answer through sympy, code tests through the real sandbox."""
    math = WorldPrompt("m1", "math", "What is 2/4 in lowest terms?", {"answer": "1/2"}, "mine.jsonl")
    code = WorldPrompt("c1", "code", "Write sq(x).", {"tests": ["assert sq(3) == 9", "assert sq(-2) == 4"]},
                       "mine.jsonl")
    pairs = [PairToLabel("u1", "m1", "math", "It is 2/4, so the answer is 2.", True,
                         "Dividing both by 2: \\boxed{1/2}", True),
             PairToLabel("u2", "c1", "code", "```python\ndef sq(x):\n    return x * x\n```", True,
                         "```python\ndef sq(x):\n    return x * 3\n```", True),  # sq(3) passes only
             PairToLabel("u3", "m1", "math", "The answer is 0.5.", True, "The answer is 1/2.", True)]
    right_math, right_code, tied = VERIFIER.label(pairs, {"m1": math, "c1": code})
    assert (right_math.choice, right_math.annotator) == ("b", "verifier:math")
    assert right_math.rationale == "verified reward 0 vs 1"
    assert (right_code.choice, right_code.annotator) == ("a", "verifier:code")
    assert right_code.rationale == "verified reward 1 vs 0.5"
    assert tied is None  # 0.5 and 1/2 are the same answer
