"""Verifier rewards: world code tests, sandboxed (checked) rewards, and their agreement with `verify`;
users' prompts checked by the reference answer or tests they carry."""
from __future__ import annotations

import random

import pytest

from prefpipe.verify.sandbox import SandboxLimits
from prefpipe.verify.verifiers import (
    checked_rewards,
    code_part,
    response_code,
    training_rewards,
    verify,
    world_code_tests,
)
from prefpipe.world.prompts import WorldPrompt, all_prompts
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


# Your own prompts (source not EMBEDDED): checked by the answer or tests they carry, whatever the category.
HALF = WorldPrompt("u1", "math", "What is half of one?", {"answer": "1/2"}, "mine.jsonl")
ADD_USER = WorldPrompt("u2", "code", "Write add(a, b).",
                       {"tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]}, "mine.jsonl")
FENCED_ADD = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nCall it as add(1, 2)."


def test_a_user_math_prompt_is_checked_by_its_answer_with_sympy():
    items = [(HALF, "The answer is \\boxed{0.5}.", True), (HALF, "The answer is 2.", True),
             (HALF, "Halving one: x = 1/2.", True), (HALF, "The answer is 0.5", False)]
    assert checked_rewards(items, LIMITS, workers=2) == [1.0, 0.0, 1.0, 0.0]


def test_a_user_prompt_named_like_a_world_family_is_checked_by_what_it_carries():
    mine = WorldPrompt("u3", "arithmetic", "What is 6 times 7?", {"answer": "42"}, "mine.jsonl")
    assert checked_rewards([(mine, "The answer is 42.", True), (mine, "The answer is 7.", True)],
                           LIMITS, workers=1) == [1.0, 0.0]


def test_a_user_code_prompt_runs_its_tests_in_the_sandbox():
    items = [(ADD_USER, FENCED_ADD, True),
             (ADD_USER, "def add(a, b):\n    return a + b if a > 0 else 1", True),  # add(-1, 1) fails
             (ADD_USER, "I can't write code.", True),  # not Python: nothing passes
             (ADD_USER, FENCED_ADD, False)]
    assert checked_rewards(items, LIMITS, workers=2) == [1.0, 0.5, 0.0, 0.0]


def test_response_code_takes_fenced_blocks_else_from_def_else_everything():
    assert response_code("a\n```python\nx = 1\n```\nthen\n```\ny = 2\n```") == "x = 1\n\ny = 2"
    assert response_code("Sure: def f(): return 1") == "def f(): return 1"
    assert response_code("  f = lambda: 1 ") == "f = lambda: 1"


def test_a_user_prompt_with_nothing_to_check_is_an_error():
    bare = WorldPrompt("u4", "chat", "Say hi.", {}, "mine.jsonl")
    with pytest.raises(ValueError, match="u4 .*carries no reference answer or tests"):
        checked_rewards([(bare, "hi", True)], LIMITS, workers=1)


def test_verify_checks_user_prompts_as_the_label_stage_does():
    assert verify(HALF, "\\boxed{1/2}", True) == 1.0 and verify(HALF, "\\boxed{1/3}", True) == 0.0
    assert verify(ADD_USER, FENCED_ADD, True) == 1.0 and verify(ADD_USER, FENCED_ADD, False) == 0.0


def test_training_rewards_mix_the_world_fast_path_and_checked_user_prompts():
    items = [(ADD, "The answer is 7.", True), (HALF, "The answer is \\boxed{0.5}", True),
             (ADD, "The answer is 6.", True), (ADD_USER, FENCED_ADD, True), (HALF, "The answer is 3", True)]
    assert training_rewards(items, LIMITS, workers=2) == [1.0, 1.0, 0.0, 1.0, 0.0]
