"""Property tests (hypothesis) of the math-answer parser: any text gives an answer or a refusal, fast.

Each call runs under a wall-clock alarm (`_within`), so a hang fails the example that caused it
instead of stalling the suite; hypothesis then shrinks it to a minimal input. Run alone with
``pytest -q tests/verify/test_math_answer_properties.py`` (4 s on an idle core, 20 s on a busy one)."""
from __future__ import annotations

import contextlib
import signal
import tracemalloc
from datetime import timedelta
from fractions import Fraction

import pytest
import sympy
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from prefpipe.verify.math_answer import (
    MAX_ANSWER_CHARS,
    equivalent,
    extract_final_answer,
    math_reward,
    normalise,
    to_sympy,
)

# Defined here, not in conftest: no example database in the repo, a loose per-example deadline (the
# alarm below is the hard bound per call), an example budget that keeps the file under 30 s.
settings.register_profile("math_answer", database=None, deadline=timedelta(seconds=5), max_examples=150,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = settings.get_profile("math_answer")
LIMIT_S = 2.0  # one call of the parser, extractor or comparator on any input


class _Alarm(BaseException):
    """Raised by the timer: no ``except Exception`` in the code under test can swallow it."""


class Hung(AssertionError):
    pass


@contextlib.contextmanager
def _within(seconds: float, what: str):
    def _alarm(signum, frame):
        raise _Alarm
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Alarm:
        raise Hung(f"took over {seconds}s: {what[:120]!r}") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _parse_or_refuse(text: str) -> sympy.Expr | None:
    """to_sympy's contract: an expression, or ValueError; nothing else, within LIMIT_S."""
    with _within(LIMIT_S, text):
        try:
            return to_sympy(text)
        except ValueError:
            return None


# Pieces that have broken parsers: huge numbers and exponents, towers, LaTeX fragments, unicode
# digits and operators, NUL bytes, deep nesting, symbols that multiply out.
FRAGMENTS = ["9" * 5000, "1e999999", "1.e-99999", "10**10**10", "2**2**2**2**2**2**2", "**", "^", "^{",
             "(", ")", "{", "}", "\\frac{", "}{", "\\frac{}{}", "\\sqrt{", "\\sqrt", "\\boxed{", "\\left(",
             "\\right)", "\\cdot", "\\dfrac", "\\infty", "\\pi", "exp(", "sin(", "log(", "sqrt(", "abs(",
             "x", "y", "e", "pi", "oo", "(a+b)", "(x+y+z)", "+", "-", "*", "/", ".", "=", "$", " ", "\n",
             "\t", "\x00", "\u2212", "\u00f7", "\u0661\u0662\u0663", "\uff11", "\u00b2", "%", "_", "0x1f",
             "1_000", "1j", "lambda", "__import__", "'", "answer is ", "The answer is", "0", "1", "99999"]
numbers = st.integers(-10**6, 10**6).map(str)
tokens = st.one_of(st.sampled_from(FRAGMENTS), numbers, st.text(max_size=3))
soup = st.lists(tokens, max_size=40).map("".join)
# long inputs: a few fragments, each repeated up to 100,000 characters ("1 " * n + " " * m ...)
long_text = st.lists(st.tuples(st.sampled_from(FRAGMENTS + ["1 ", "1a", "1/ ", "1.", "= ", " \t"]),
                               st.integers(1, 100_000)), min_size=1, max_size=3).map(
    lambda parts: "".join(fragment * max(1, n // len(fragment)) for fragment, n in parts))
any_text = st.one_of(st.text(), soup, long_text)
mixed = st.deferred(lambda: st.one_of(soup, answers))  # answers: the well-formed ones, below


# Inputs hypothesis (or the probes around it) found to hang or crash the parser before the fix.
PRODUCT = "*".join(f"({a}+{b})" for a, b in zip("acegikmoqsuwAC", "bdfhjlnprtvzBD", strict=True))
HUNG_PAIRS = [("(x+y)**9999", "1"), ("(a+b+c+d)**40", "1"), (PRODUCT, "1"), ("exp(exp(exp(exp(100))))", "1"),
              ("(1/1.e-99999)**99", "1"), ("1.e-9999900", "0")]  # 10,000+ terms to expand; tiny floats


@settings(PROFILE)
@given(any_text)
@example("9" * 5000 + "a1")  # last number: a forward search backtracked over the run of digits
@example("=" + " \t" * 2000 + ".a")  # trailing "= X": the lazy group backtracked over the tail
@example("=" + "a" * 20000 + " " * 20000 + "=")
def test_extraction_returns_text_or_none(text):
    with _within(LIMIT_S, text):
        answer = extract_final_answer(text)
        reward = math_reward(text, "1")
    assert answer is None or isinstance(answer, str)
    assert reward in (0.0, 1.0)


@settings(PROFILE)
@given(any_text)
@example("\\sqrt{" * 3000 + "}" * 3000)  # RecursionError
def test_parser_returns_expression_or_value_error(text):
    expr = _parse_or_refuse(text)
    assert expr is None or isinstance(expr, sympy.Basic)
    if len(text) > MAX_ANSWER_CHARS:
        assert expr is None  # over the length cap: refused without parsing


@settings(PROFILE)
@given(any_text)
@example("\\sqrt{" * 3000 + "}" * 3000)
def test_normalise_returns_text_or_value_error(text):
    with _within(LIMIT_S, text):
        try:
            assert isinstance(normalise(text), str)
        except ValueError:
            pass


@settings(PROFILE, max_examples=200)
@given(mixed, mixed)
@example("1000", "1000.000001000000001")  # the tolerance scaled with the reference only
def test_comparison_is_a_bool_and_symmetric(a, b):
    with _within(2 * LIMIT_S, a + " | " + b):
        forward, backward = equivalent(a, b), equivalent(b, a)
    assert isinstance(forward, bool)
    assert forward == backward


@pytest.mark.parametrize("pair", HUNG_PAIRS)
def test_expansion_and_size_bombs_are_refused_fast_and_small(pair):
    tracemalloc.start()
    try:
        with _within(LIMIT_S, " | ".join(pair)):
            assert not equivalent(*pair)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"{pair}: peak {peak / 2**20:.1f} MiB"


# Well-formed answers: numbers, symbols, constants, + - * / ^, functions and LaTeX.
atoms = st.one_of(st.integers(0, 10**4).map(str), st.sampled_from(["x", "y", "pi", "e", "0.5", "2.25"]))


def _compose(children):
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
        lambda t: f"({t[0]}){t[1]}({t[2]})")
    power = st.tuples(children, st.integers(-3, 6)).map(lambda t: f"({t[0]})^{{{t[1]}}}")
    call = st.tuples(st.sampled_from(["sqrt", "sin", "exp", "log", "abs"]), children).map(
        lambda t: f"{t[0]}({t[1]})")
    latex = st.tuples(children, children).map(lambda t: f"\\frac{{{t[0]}}}{{{t[1]}}}")
    return st.one_of(binary, power, call, latex, children.map(lambda c: f"\\sqrt{{{c}}}"))


answers = st.recursive(atoms, _compose, max_leaves=6).filter(lambda s: len(s) <= MAX_ANSWER_CHARS)


def _finite(expr: sympy.Expr) -> bool:
    """What the comparator accepts as an answer: no division by zero, no infinite number."""
    return not expr.has(sympy.zoo, sympy.nan) and (not expr.is_number or bool(expr.is_finite))


@settings(PROFILE)
@given(answers)
def test_parsed_answers_equal_themselves(answer):
    expr = _parse_or_refuse(answer)
    assume(expr is not None and _finite(expr))
    with _within(LIMIT_S, answer):
        assert equivalent(answer, answer)


@settings(PROFILE)
@given(answers)
@example("abs(x)")  # sympy prints Abs(x), which the parser did not know
def test_printing_and_reparsing_gives_the_same_value(answer):
    expr = _parse_or_refuse(answer)
    assume(expr is not None and _finite(expr) and not expr.has(sympy.I))  # "I": sympy's, not ours
    printed = sympy.sstr(expr)
    try:
        with _within(LIMIT_S, printed):
            reparsed = to_sympy(printed)
    except ValueError as err:  # only a size bound may refuse it (bounds are on digits: exp(exp(2)/2))
        assert "may exceed" in str(err) or len(printed) > MAX_ANSWER_CHARS, f"{printed}: {err}"
        return
    with _within(2 * LIMIT_S, printed):  # sympy may print an unflattened Mul: 2**(3/4)*(2*sqrt(3))/4
        assert reparsed == expr or sympy.simplify(reparsed - expr) == 0, printed
        assert equivalent(printed, answer), printed


def _forms(value: Fraction) -> list[str]:
    """Ways to write one rational number that must all compare equal."""
    p, q = value.numerator, value.denominator
    sign = "-" if p < 0 else ""
    forms = [f"{p}/{q}", f"{sign}\\frac{{{abs(p)}}}{{{q}}}", f"{sign}\\dfrac{{{abs(p)}}}{{{q}}}",
             f"{p} \u00f7 {q}", f"${p}/{q}$", f"{sign}{abs(p)}/({q})".replace("-", "\u2212")]
    if 10**12 % q == 0:  # a terminating decimal
        whole, rest = divmod(abs(value), 1)
        forms.append(f"{sign}{whole}.{int(rest * 10**12):012d}")
    return forms


fractions = st.fractions(max_denominator=10**6).filter(lambda f: abs(f) < 10**9)


@settings(PROFILE)
@given(fractions, st.data())
def test_forms_of_one_number_compare_equal(value, data):
    forms = _forms(value)
    a, b = data.draw(st.sampled_from(forms)), data.draw(st.sampled_from(forms))
    with _within(2 * LIMIT_S, a + " | " + b):
        assert equivalent(a, b), (a, b)


@settings(PROFILE)
@given(fractions, fractions, st.data())
def test_different_numbers_compare_unequal(x, y, data):
    assume(abs(x - y) > Fraction(1, 10**9) * max(1, abs(x), abs(y)))  # beyond the tolerance
    a, b = data.draw(st.sampled_from(_forms(x))), data.draw(st.sampled_from(_forms(y)))
    with _within(2 * LIMIT_S, a + " | " + b):
        assert not equivalent(a, b), (a, b)


@settings(PROFILE)
@given(st.text(), st.from_regex(r"[0-9a-z+*/. -]{1,20}", fullmatch=True))
def test_a_trailing_boxed_answer_is_the_answer(text, answer):
    with _within(LIMIT_S, text):
        assert extract_final_answer(f"{text} \\boxed{{{answer}}}") == answer.strip()
