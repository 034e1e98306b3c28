"""Answer checks: a tiny AST evaluator that never runs code, partial credit, final numbers."""
from __future__ import annotations

import pytest

from prefpipe.world.checks import (
    UnsafeExpression,
    code_pass_fraction,
    evaluate_expression,
    final_number,
)
from prefpipe.world.content import CODE_TASKS, CODE_TEST_INPUTS

REFERENCE = {
    "a + b": lambda a, b: a + b,
    "a - b": lambda a, b: a - b,
    "a * b": lambda a, b: a * b,
    "max(a, b)": lambda a, b: a if a >= b else b,
    "min(a, b)": lambda a, b: a if a <= b else b,
    "a * a + b": lambda a, b: a * a + b,
    "2 * a + b": lambda a, b: 2 * a + b,
    "abs(a - b)": lambda a, b: a - b if a >= b else b - a,
}


def test_reference_covers_every_code_task():
    assert set(REFERENCE) == set(CODE_TASKS.values())


@pytest.mark.parametrize("expr", sorted(REFERENCE))
def test_evaluates_every_task_expression(expr):
    for a, b in CODE_TEST_INPUTS + ((-7, 3), (0, 11)):
        assert evaluate_expression(expr, a, b) == REFERENCE[expr](a, b), (expr, a, b)


@pytest.mark.parametrize("expr,a,b,expected", [
    ("abs(a - b)", 3, 10, 7),
    ("abs(a - b)", 10, 3, 7),
    ("max(a, b)", -2, -9, -2),
    ("2 * a + b", 4, -1, 7),
    ("-a + 3 * (b - 1)", 2, 5, 10),
    ("min(abs(a), max(b, 0))", -6, 4, 4),
])
def test_hand_computed_values(expr, a, b, expected):
    assert evaluate_expression(expr, a, b) == expected


@pytest.mark.parametrize("expr", [
    "__import__('os').system('x')",
    "a.__class__",
    "max(a)",  # wrong arity
    "abs(a, b)",
    "max(a, b, key=abs)",
    "(lambda: 1)()",
    "open('/etc/passwd')",
    "a ** b",
    "a // b",
    "a if a else b",
    "[a, b]",
    "c + 1",
    "'a' + 'b'",
    "1.5 * a",
    "True + a",
    "10000 * a",  # constants are small ints only
    "a; b",
    "import os",
    "",
])
def test_unsafe_expressions_are_rejected(expr):
    with pytest.raises(UnsafeExpression):
        evaluate_expression(expr, 1, 2)


def test_rejected_expression_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafeExpression):
        evaluate_expression(f"open({str(marker)!r}, 'w').write('x')", 1, 2)
    with pytest.raises(UnsafeExpression):
        evaluate_expression(f"__import__('pathlib').Path({str(marker)!r}).touch()", 1, 2)
    assert not marker.exists()


@pytest.mark.parametrize("expr", [
    "-" * 1500 + "a",
    "1+" * 1500 + "1",
    "(" * 1000 + "a" + ")" * 1000,
    "abs(" * 400 + "a" + ")" * 400,
])
def test_deeply_nested_expression_is_unsafe(expr):
    with pytest.raises(UnsafeExpression):
        evaluate_expression(expr, 1, 2)


@pytest.mark.parametrize("expr", ["-" * 10000 + "a", "1+" * 10000 + "1"])
def test_very_deeply_nested_expression_is_unsafe(expr):
    with pytest.raises(UnsafeExpression):
        evaluate_expression(expr, 1, 2)


def test_code_pass_fraction_full_and_partial_credit():
    assert code_pass_fraction("a + b", "a + b") == 1.0
    assert code_pass_fraction("b + a", "a + b") == 1.0
    # a + b equals max(a, b) only on (0, 0) of the six inputs
    assert code_pass_fraction("a + b", "max(a, b)") == pytest.approx(1 / 6)
    # a - b differs from abs(a - b) only on (1, 2)
    assert code_pass_fraction("a - b", "abs(a - b)") == pytest.approx(5 / 6)
    assert code_pass_fraction("a * b + 1", "a * b") == 0.0


def test_code_pass_fraction_matches_a_direct_count():
    for expr in REFERENCE:
        for expected in REFERENCE:
            hits = sum(REFERENCE[expr](a, b) == REFERENCE[expected](a, b)
                       for a, b in CODE_TEST_INPUTS)
            assert code_pass_fraction(expr, expected) == hits / len(CODE_TEST_INPUTS)


def test_code_pass_fraction_raises_on_unsafe_code():
    with pytest.raises(UnsafeExpression):
        code_pass_fraction("a ** b", "a + b")


@pytest.mark.parametrize("text,expected", [
    ("The answer is 12.", 12),
    ("3 + 4 = 7.", 7),
    ("7 - 10 = -3.", -3),
    ("I have 12 apples and 30 pears", 30),
    ("first 1\nthen 2\nfinally", 2),
    ("-5", -5),
    ("no digits here", None),
    ("", None),
])
def test_final_number(text, expected):
    assert final_number(text) == expected
