"""The label-stage Verifier: world code tests, sandboxed rewards, labels, and agreement with `verify`."""
from __future__ import annotations

import random

import pytest

from prefpipe.label.sandbox import SandboxLimits
from prefpipe.label.types import PairToLabel
from prefpipe.label.verifiers import Verifier, code_part, verify, world_code_tests
from prefpipe.world.prompts import all_prompts
from prefpipe.world.responses import Style, render

PROMPTS = {p.prompt: p for p in all_prompts(5)}
ADD = PROMPTS["What is 3 plus 4?"]
CODE = PROMPTS["Write a function g(a, b) that returns the larger of a and b."]
EXPLAIN = PROMPTS["Explain why ice floats."]
BY_ID = {p.prompt_id: p for p in (ADD, CODE)}
VERIFIER = Verifier(SandboxLimits(wall_s=4.0, cpu_s=1.0), workers=2)


def test_world_code_tests_are_hand_computed():
    assert world_code_tests(CODE) == [
        "assert g(0, 0) == 0", "assert g(1, 2) == 2", "assert g(3, -4) == 3",
        "assert g(7, 5) == 7", "assert g(-2, -9) == -2", "assert g(10, 3) == 10"]


def test_code_part():
    assert code_part("Here you go: def g(a, b): return a") == "def g(a, b): return a"
    assert code_part("no code") == ""


def test_rewards():
    items = [(ADD, "Sure thing! The answer is 7.", True), (ADD, "The answer is 8.", True),
             (ADD, "The answer is 7.", False), (CODE, "def g(a, b): return max(a, b)", True),
             (CODE, "Here you go: def g(a, b): return a + b", True),
             (CODE, "def f(a, b): return max(a, b)", True),
             (CODE, "def g(a, b):\n    return a if a > b else b", True),  # the AST path can't read this
             (CODE, "def g(a, b): return __import__('os').system('true')", True), (CODE, "no code", True)]
    assert VERIFIER.rewards(items) == pytest.approx([1, 0, 0, 1, 1 / 6, 0, 1, 0, 0])


def test_unknown_family_is_an_error():
    with pytest.raises(ValueError, match="explain"):
        VERIFIER.rewards([(EXPLAIN, "Ice is less dense.", True)])


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


def test_sandboxed_rewards_equal_the_ast_fast_path_on_world_responses():
    rng = random.Random(7)
    world = all_prompts(9)
    sample = (rng.sample([p for p in world if p.family == "code"], 40)
              + rng.sample([p for p in world if p.family == "arithmetic"], 40))
    items = []
    for prompt in sample:
        style = Style(filler=rng.random() < 0.3, restate=rng.random() < 0.3, caveat=rng.random() < 0.3,
                      closing=rng.random() < 0.3, wrong=rng.random() < 0.5)
        items.append((prompt, render(prompt, style, rng), rng.random() < 0.9))
    expected = [verify(prompt, response, finished) for prompt, response, finished in items]
    assert VERIFIER.rewards(items) == pytest.approx(expected)
    assert len({round(r, 3) for r in expected[:40]}) >= 3  # code rewards include partial credit
