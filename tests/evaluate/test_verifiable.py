"""pass@k (Chen et al. 2021, eq. 1) against exact binomials worked out by hand, and verifiable accuracy
per family on planted right and wrong responses: the embedded world's arithmetic and code prompts and
your own prompts with an answer or tests."""
from __future__ import annotations

import json
import math
import random

import pytest

from prefpipe.evaluate.verifiable import is_verifiable, make_checker, pass_at_k, verifiable_accuracy
from prefpipe.verify.sandbox import SandboxLimits
from prefpipe.world.catalog import to_checked_prompt
from prefpipe.world.prompts import WorldPrompt, all_prompts

WORLD = {p.prompt: p for p in all_prompts(5)}
ADD = WORLD["What is 3 plus 4?"]  # 7
SUB = WORLD["What is 5 minus 2?"]  # 3
CODE = WORLD["Write a function g(a, b) that returns the larger of a and b."]
EXPLAIN = WORLD["Explain why ice floats."]
CHECKER = make_checker(SandboxLimits(wall_s=4.0, cpu_s=1.0), workers=2)


@pytest.mark.parametrize("n, c, k, expected", [
    (5, 2, 1, 0.4),  # c / n
    (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
    (5, 2, 4, 1.0),  # k >= n - c + 1: every 4 of 5 hold a right one
    (10, 3, 5, 11 / 12),  # 1 - C(7,5)/C(10,5) = 1 - 21/252
    (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (5, 0, 3, 0.0),
    (4, 4, 1, 1.0),
])
def test_pass_at_k_by_hand(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_pass_at_k_equals_the_binomial_ratio_and_grows_with_k():
    for n in range(1, 13):
        for c in range(n + 1):
            values = [pass_at_k(n, c, k) for k in range(1, n + 1)]
            exact = [1 - math.comb(n - c, k) / math.comb(n, k) for k in range(1, n + 1)]
            assert values == pytest.approx(exact, rel=1e-12, abs=1e-15)
            assert values[0] == pytest.approx(c / n, rel=1e-12, abs=1e-15)
            assert all(a <= b + 1e-15 for a, b in zip(values, values[1:]))  # pass@k >= pass@1


def test_pass_at_k_is_stable_where_the_binomials_are_huge():
    assert pass_at_k(2000, 1, 1) == pytest.approx(1 / 2000, rel=1e-12)
    assert pass_at_k(2000, 1000, 100) == pytest.approx(1 - math.comb(1000, 100) / math.comb(2000, 100),
                                                       rel=1e-12)


@pytest.mark.parametrize("n, c, k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError, match="pass_at_k needs"):
        pass_at_k(n, c, k)


def test_world_arithmetic_and_code_by_family_by_hand():
    prompts = [ADD, SUB, CODE]
    samples = [
        [("The answer is 7.", True), ("The answer is 8.", True), ("The answer is 7.", False),  # unfinished
         ("Great question! The answer is 6.", True)],  # c = 1 of 4
        [("The answer is 4.", True)] * 4,  # c = 0
        [("def g(a, b): return max(a, b)", True), ("def g(a, b): return a + b", True),  # 1/6 of tests: fail
         ("Sure! def g(a, b): return max(a, b)", True), ("def f(a, b): return max(a, b)", True)],  # c = 2
    ]
    got = verifiable_accuracy(prompts, samples, [1, 2, 4], CHECKER)
    # per prompt: pass@1 c/n; pass@2 1 - C(n-c,2)/C(4,2); pass@4 = [c > 0]
    add, sub, code = (0.25, 0.5, 1.0), (0.0, 0.0, 0.0), (0.5, 1 - 1 / 6, 1.0)
    expected = {"verifiable_prompts_arithmetic": 2, "verifiable_prompts_code": 1, "verifiable_prompts": 3}
    for i, k in enumerate((1, 2, 4)):
        expected[f"pass@{k}_arithmetic"] = (add[i] + sub[i]) / 2
        expected[f"pass@{k}_code"] = code[i]
        expected[f"pass@{k}"] = (add[i] + sub[i] + code[i]) / 3
    assert got == pytest.approx(expected, rel=1e-12)
    assert (got["pass@1"], got["pass@2"], got["pass@4"]) == pytest.approx((0.25, 4 / 9, 2 / 3), rel=1e-12)


def test_your_own_prompts_with_an_answer_or_tests():
    rows = [{"prompt_id": "m1", "category": "math", "prompt": "What is half of one?",
             "meta": json.dumps({"answer": "1/2"}), "source": "mine.jsonl"},
            {"prompt_id": "m2", "category": "coding", "prompt": "Write add(a, b).", "source": "mine.jsonl",
             "meta": json.dumps({"tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]})}]
    half, add = (to_checked_prompt(row) for row in rows)
    fenced = "Here:\n```python\ndef add(a, b):\n    return a + b\n```"
    samples = [[("The answer is \\boxed{0.5}.", True), ("The answer is 2.", True)],
               [(fenced, True), ("def add(a, b):\n    return a + b if a > 0 else 1", True)]]  # 2nd: half
    got = verifiable_accuracy([half, add], samples, [1, 2], CHECKER)
    assert got == {"verifiable_prompts_coding": 1, "verifiable_prompts_math": 1, "verifiable_prompts": 2,
                   "pass@1_coding": 0.5, "pass@2_coding": 1.0, "pass@1_math": 0.5, "pass@2_math": 1.0,
                   "pass@1": 0.5, "pass@2": 1.0}


def test_pass_at_k_never_falls_below_pass_at_1_on_random_plants():
    rng = random.Random(0)
    prompts = [ADD, SUB] * 6
    samples = [[(f"The answer is {p.meta['answer'] + rng.choice([0, 0, 1, 2])}.", rng.random() < 0.9)
                for _ in range(6)] for p in prompts]
    got = verifiable_accuracy(prompts, samples, [1, 3, 6], CHECKER)
    assert 0.0 < got["pass@1"] < got["pass@3"] <= got["pass@6"] <= 1.0


def test_which_prompts_are_verifiable():
    assert is_verifiable(ADD) and is_verifiable(CODE)
    assert not is_verifiable(EXPLAIN)
    assert not is_verifiable(WorldPrompt("x", "arithmetic", "hi", {}))  # evaluate's wrap of a bare prompt
    assert not is_verifiable(WorldPrompt("y", "chat", "hi", {}, "mine.jsonl"))
    assert is_verifiable(WorldPrompt("z", "chat", "1+1?", {"answer": "2"}, "mine.jsonl"))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="category 'explain'.*is_verifiable"):
        verifiable_accuracy([EXPLAIN], [[("Ice is less dense than liquid water.", True)]], [1], CHECKER)
    with pytest.raises(ValueError, match="has 2 samples, fewer than k=4"):
        verifiable_accuracy([ADD], [[("The answer is 7.", True)] * 2], [1, 4], CHECKER)
    with pytest.raises(ValueError, match="1 prompts but 2 sample lists"):
        verifiable_accuracy([ADD], [[], []], [1], CHECKER)
    with pytest.raises(RuntimeError, match="returned 0 rewards for 1 samples"):
        verifiable_accuracy([ADD], [[("The answer is 7.", True)]], [1], lambda items: [])
    assert verifiable_accuracy([], [], [1], CHECKER) == {"verifiable_prompts": 0}
