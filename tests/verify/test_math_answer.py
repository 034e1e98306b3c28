"""Final-answer extraction and sympy equivalence, with hand-picked cases and hostile inputs."""
from __future__ import annotations

import time

import pytest

from prefpipe.verify.math_answer import equivalent, extract_final_answer, math_reward


@pytest.mark.parametrize("text,expected", [
    ("So the result is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
    ("first \\boxed{3} then \\boxed{x^{2}+\\frac{1}{2}} done", "x^{2}+\\frac{1}{2}"),
    ("The answer is 3.5.", "3.5"),
    ("Sure thing! The answer is 7. Hope this helps!", "7"),
    ("The answer is \u22123.", "-3"),
    ("3 + 4 = 7.", "7"),
    ("You asked: What is 9 - 2? 9 - 2 = 7. Let me know if you have more questions.", "7"),
    ("I ate 3/4 of it and -2 were left", "-2"),
    ("roughly 2.25 or so, maybe 3/4", "3/4"),
    ("no numbers here", None),
    ("\\boxed{unbalanced", None),
    ("3 + 4 = .", "4"),  # nothing after "=": the last number
    ("x = 3.5 .", "3.5"),
])
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


@pytest.mark.parametrize("candidate,reference", [
    ("0.5", "1/2"),
    ("\\frac{1}{2}", "0.5"),
    ("2*sqrt(2)", "sqrt(8)"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("x+1", "1+x"),
    ("-3", "\u22123"),
    ("x^2 - 1", "(x-1)(x+1)"),
    ("2^{10}", "1024"),
    ("\\frac{\\frac{1}{2}}{2}", "0.25"),
    ("3 \\cdot 4", "12"),
    ("x = 5", "5"),
    ("$7$", "7"),
    ("sin(x)^2 + cos(x)^2", "1"),  # simplify
    ("sin(x)**2*(a+b)**9 + cos(x)**2*(a+b)**9", "(a+b)**9"),
    ("e^{10}", "exp(10)"),
    ("1.e3", "1000"),
    ("abs(-3)", "Abs(3)"),
])
def test_equivalent_pairs(candidate, reference):
    assert equivalent(candidate, reference)
    assert equivalent(reference, candidate)


@pytest.mark.parametrize("candidate,reference", [
    ("7", "8"),
    ("x+1", "x+2"),
    ("sqrt(8)", "3"),
    ("2**99999 + 1", "2**99999"),  # integers compare exactly, no tolerance
    ("1/0", "1/0"),  # zoo is never a match
    ("garbage!!", "1"),
    ("", "0"),
    ("__import__('os').system('true')", "0"),
    ("(lambda: 1)()", "1"),
    ("x.__class__", "x"),
    ("1" * 201, "1" * 201),  # over the length cap
    ("x/0", "x/0"),  # a division by zero is never an answer
    ("(x+y)**9999", "(x+y)**9999"),  # expand could make over MAX_TERMS terms: refused
    ("sin(x)**2*(a+b)**99 + cos(x)**2*(a+b)**99", "(a+b)**99"),  # too big to simplify: not shown equal
])
def test_not_equivalent(candidate, reference):
    assert not equivalent(candidate, reference)


def test_relative_tolerance():
    assert equivalent("0.333333333333", "1/3")
    assert not equivalent("0.333", "1/3")
    assert equivalent("0.333", "1/3", rel_tol=1e-2)


@pytest.mark.parametrize("hostile", ["9**9**9", "9^9^9", "2**(10**10)", "(10**50000)**3", "1e999999**9",
                                     "10**10**10 - 10**10**10", "((((((((((((((((((((1))))))))))))))))))))"])
def test_hostile_powers_return_fast(hostile):
    start = time.perf_counter()
    equivalent(hostile, "1")
    assert time.perf_counter() - start < 1.0


def test_math_reward():
    assert math_reward("The answer is \\boxed{0.5}", "1/2") == 1.0
    assert math_reward("3 + 4 = 7.", "7") == 1.0
    assert math_reward("3 + 4 = 8.", "7") == 0.0
    assert math_reward("I don't know.", "7") == 0.0
