"""Verifier rewards: world code tests, sandboxed (checked) rewards, and their agreement with `verify`."""
from __future__ import annotations

import random

import pytest

from prefpipe.verify.sandbox import SandboxLimits
from prefpipe.verify.verifiers import checked_rewards, code_part, verify, world_code_tests
from prefpipe.world.prompts import all_prompts
from prefpipe.world.responses import Style, render

PROMPTS = {p.prompt: p for p in all_prompts(5)}
ADD = PROMPTS["What is 3 plus 4?"]
CODE = PROMPTS["Write a function g(a, b) that returns the larger of a and b."]
EXPLAIN = PROMPTS["Explain why ice floats."]
LIMITS = SandboxLimits(wall_s=4.0, cpu_s=1.0)


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
    assert checked_rewards(items, LIMITS, workers=2) == pytest.approx([1, 0, 0, 1, 1 / 6, 0, 1, 0, 0])


def test_unknown_family_is_an_error():
    with pytest.raises(ValueError, match="explain"):
        checked_rewards([(EXPLAIN, "Ice is less dense.", True)], LIMITS, workers=2)


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
    assert checked_rewards(items, LIMITS, workers=2) == pytest.approx(expected)
    assert len({round(r, 3) for r in expected[:40]}) >= 3  # code rewards include partial credit
