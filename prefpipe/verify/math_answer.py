"""Math verifier: pull the final answer out of a response and test it for equivalence with sympy.

Extraction follows the conventions of the MATH benchmark (Hendrycks et al. 2021): a ``\\boxed{...}``
answer wins, then "The answer is X", then a trailing "= X.", then the last number in the text.

Equivalence parses both sides without ever evaluating code: the text is normalised (a small LaTeX
subset, unicode minus, implicit multiplication), parsed by ``ast.parse`` (which only builds a tree),
checked against a whitelist of node types, bounded in size (so ``9**9**9``, ``exp(exp(exp(9)))`` and
``1.e-99999`` are rejected before any arithmetic runs), turned into a sympy expression node by node,
and refused if ``expand`` could make more than MAX_TERMS terms of it (``(a+b)**50000``). Two answers
are equal if they are numerically equal within a relative tolerance or ``simplify(a - b) == 0``
(tried on an expanded difference of at most MAX_SIMPLIFY_OPS operations). Extraction takes time
linear in the response's length.
``sympy.parsing.sympy_parser.parse_expr`` is not used on purpose: it ``eval``s the transformed string.
"""
from __future__ import annotations

import ast
import functools
import math
import operator
import random
import re

import sympy

MAX_ANSWER_CHARS = 200  # longer answers (candidate or reference) are not compared: False
MAX_RESULT_DIGITS = 100_000  # bound on the decimal digits any sub-expression may reach
MAX_EXPONENT = 100_000  # a literal exponent above this is refused outright
MAX_TERMS = 200  # bound on the terms sympy.expand may make of an answer ((a+b+c)**18 is 190)
MAX_SIMPLIFY_OPS = 500  # a bigger expanded difference is not simplified (seconds each): not equal

_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u00d7": "*", "\u00f7": "/", "\u22c5": "*"})
_DIGIT = re.compile(r"\d")
_REVERSED_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?-?")  # -2, 3.5, -1.5 / 2 backwards
_STRAY_DOT = re.compile(r"\.(?!\d)")  # a "." that is no decimal point
_ANSWER_IS = re.compile(r"answer is:?\s*(.+?)(?:\.(?=\s)|\.?$|\n)", re.I | re.M)
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow}
_FUNCTIONS = {"sqrt": sympy.sqrt, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan,
              "log": sympy.log, "ln": sympy.log, "exp": sympy.exp, "abs": sympy.Abs, "Abs": sympy.Abs}
_CONSTANTS = {"pi": sympy.pi, "e": sympy.E, "E": sympy.E, "oo": sympy.oo, "inf": sympy.oo,
              "infty": sympy.oo}
_LATEX_WORDS = (("\\left", ""), ("\\right", ""), ("\\!", ""), ("\\,", ""), ("\\;", ""), ("\\ ", ""),
                ("\\cdot", "*"), ("\\times", "*"), ("\\div", "/"), ("\\pi", "pi"), ("\\infty", "oo"),
                ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\ln", "ln"), ("\\log", "log"),
                ("\\exp", "exp"), ("\\sin", "sin"), ("\\cos", "cos"), ("\\tan", "tan"))


class _Refused(ValueError):
    """The answer is outside what the verifier will compare (too big, unknown syntax)."""


def extract_final_answer(text: str) -> str | None:
    """The final answer of a response, or None when it states none.

    Order: the last ``\\boxed{...}`` (nested braces allowed), the last "The answer is X", a
    trailing "= X.", then the last number (integer, decimal, fraction such as 3/4, negative)."""
    text = text.translate(_MINUS)
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    stated = _ANSWER_IS.findall(text)
    if stated:
        return stated[-1].strip().strip("$").strip()
    trailing = _trailing_equals(text.strip())
    if trailing is not None:
        return trailing.strip("$").strip()
    return _last_number(text)


def _trailing_equals(text: str) -> str | None:
    """X of a text ending "= X" or "= X." (X one line, no "=", "." only before a digit). Only the last
    "=" can start it, so its tail is read by hand: a regex backtracks quadratically over long tails."""
    answer = text[text.rfind("=") + 1:].strip() if "=" in text else ""
    answer = answer[:-1].rstrip() if answer.endswith(".") else answer
    if not answer or "\n" in answer or _STRAY_DOT.search(answer):
        return None
    return answer


def _last_number(text: str) -> str | None:
    """The longest number ending at the text's last digit, matched backwards from that digit (a
    forward search for a number followed by no digit is quadratic in a long run of digits)."""
    backwards = text[::-1]
    last_digit = _DIGIT.search(backwards)
    if last_digit is None:
        return None
    return _REVERSED_NUMBER.match(backwards, last_digit.start()).group(0)[::-1].replace(" ", "")


def _last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for index in range(begin - 1, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[begin:index]
    return None  # unbalanced braces: no boxed answer


def equivalent(candidate: str, reference: str, rel_tol: float = 1e-9) -> bool:
    """True if the two answers denote the same value or expression; never raises.

    Inputs longer than MAX_ANSWER_CHARS, outside the supported syntax, or whose size bounds exceed
    MAX_RESULT_DIGITS or MAX_TERMS give False; so do divisions by zero and infinities."""
    if not isinstance(candidate, str) or not isinstance(reference, str):
        return False
    if len(candidate) > MAX_ANSWER_CHARS or len(reference) > MAX_ANSWER_CHARS:
        return False
    return _equivalent_cached(candidate, reference, rel_tol)


@functools.lru_cache(maxsize=65_536)
def _equivalent_cached(candidate: str, reference: str, rel_tol: float) -> bool:
    try:
        a, b = to_sympy(candidate), to_sympy(reference)
        return _same(a, b, rel_tol)
    except Exception:  # noqa: BLE001 - any failure to parse or compare means "not shown equal"
        return False


def math_reward(response: str, reference: str) -> float:
    """1.0 if the response's final answer is equivalent to the reference, else 0.0."""
    answer = extract_final_answer(response)
    return float(answer is not None and equivalent(answer, reference))


def to_sympy(answer: str) -> sympy.Expr:
    """Parse an answer into a sympy expression without evaluating code; raises ValueError."""
    source = normalise(answer)
    if not source:
        raise _Refused(f"empty answer {answer!r}")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise _Refused(f"cannot parse {answer!r}") from err
    _digits(tree.body, source)  # raises _Refused when the value could be too big to compute
    try:
        expr = _build(tree.body, source)
    except (ArithmeticError, TypeError, ValueError, RecursionError) as err:
        raise _Refused(f"cannot build {answer!r}: {err}") from err
    if _terms(expr) > MAX_TERMS:
        raise _Refused(f"{answer!r} may exceed {MAX_TERMS} terms once expanded")
    return expr


def normalise(answer: str) -> str:
    """LaTeX subset (``\\frac``, ``\\sqrt``, ``\\cdot``, ``^``) and unicode to Python syntax.

    Raises ValueError for answers over MAX_ANSWER_CHARS or with unbalanced ``\\frac``/``\\sqrt``."""
    if len(answer) > MAX_ANSWER_CHARS:
        raise _Refused(f"answer over {MAX_ANSWER_CHARS} characters")
    text = answer.translate(_MINUS).strip().strip("$").strip()
    for word, replacement in _LATEX_WORDS:
        text = text.replace(word, replacement)
    text = _replace_command(text, "\\frac", 2, lambda num, den: f"(({num})/({den}))")
    text = _replace_command(text, "\\sqrt", 1, lambda arg: f"sqrt({arg})")
    text = re.sub(r"^\s*[A-Za-z]\w*\s*=(?!=)", "", text)  # "x = 5" -> "5"
    text = text.replace("{", "(").replace("}", ")").replace("^", "**").rstrip(". ")
    text = re.sub(r"(\d)\s*(?=[A-Za-z(])", r"\1*", text)  # 2x -> 2*x, 2(x+1) -> 2*(x+1)
    text = re.sub(r"\)\s*(?=[\w(])", ")*", text)  # (a)(b) -> (a)*(b)
    return text.strip()


def _replace_command(text: str, command: str, n_args: int, render) -> str:
    """Rewrite every ``\\command{a}{b}`` (innermost arguments first) with balanced braces."""
    while (start := text.find(command + "{")) >= 0:
        args, index = [], start + len(command)
        for _ in range(n_args):
            if index >= len(text) or text[index] != "{":
                raise _Refused(f"{command} without {n_args} braced arguments")
            depth, begin = 0, index
            while True:
                if index >= len(text):
                    raise _Refused(f"unbalanced braces after {command}")
                depth += {"{": 1, "}": -1}.get(text[index], 0)
                index += 1
                if depth == 0:
                    break
            args.append(_replace_command(text[begin + 1:index - 1], command, n_args, render))
        text = text[:start] + render(*args) + text[index:]
    return text


def _digits(node: ast.AST, source: str) -> int:
    """Upper bound on the decimal digits of the node's value (symbols count as 1)."""
    if isinstance(node, ast.Name):
        return 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        return _digits(node.operand, source)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        literal = ast.get_source_segment(source, node) or "1"
        exponent = re.search(r"[eE]([-+]?[\d_]+)$", literal)
        bound = len(literal) + (abs(int(exponent.group(1))) if exponent else 0)  # 1.e-300: 1/10**300
    elif isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _digits(node.left, source), _digits(node.right, source)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            bound = max(left, right) + 1
        elif isinstance(node.op, (ast.Mult, ast.Div)):
            bound = left + right
        else:
            bound = left * _exponent_bound(node.right, right)
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and len(node.args) == 1 and not node.keywords):
        inner = _digits(node.args[0], source)  # exp(10**5) has 43,430 digits; the others, no more
        bound = math.ceil(10 ** min(inner, 7) / math.log(10)) if node.func.id == "exp" else inner
    else:
        raise _Refused(f"syntax not supported: {type(node).__name__}")
    if bound > MAX_RESULT_DIGITS:
        raise _Refused(f"value may exceed {MAX_RESULT_DIGITS} digits")
    return bound


def _exponent_bound(node: ast.AST, digits: int) -> int:
    """Bound on |exponent|: exact for a number or a ratio of two (``2**(1/4)``), else from digits."""
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        node = node.operand
    is_ratio = isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
    top, bottom = (_literal(node.left), _literal(node.right)) if is_ratio else (_literal(node), 1)
    if top is not None and bottom:
        if abs(top) > MAX_EXPONENT * abs(bottom):
            raise _Refused(f"exponent may exceed {MAX_EXPONENT}")
        return max(1, math.ceil(abs(top / bottom)))
    if digits > 4:
        raise _Refused("exponent may exceed the size bound")
    return 10 ** digits


def _literal(node: ast.AST) -> int | float | None:
    """The value of a signed int or float literal, else None."""
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        node = node.operand
    return node.value if isinstance(node, ast.Constant) and type(node.value) in (int, float) else None


def _build(node: ast.AST, source: str) -> sympy.Expr:
    if isinstance(node, ast.Constant):
        return sympy.Rational(ast.get_source_segment(source, node))  # exact: "0.1" -> 1/10
    if isinstance(node, ast.Name):
        return _CONSTANTS.get(node.id) or sympy.Symbol(node.id)
    if isinstance(node, ast.UnaryOp):
        operand = _build(node.operand, source)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return _OPERATORS[type(node.op)](_build(node.left, source), _build(node.right, source))
    if isinstance(node, ast.Call):
        return _FUNCTIONS[node.func.id](_build(node.args[0], source))
    raise _Refused(f"syntax not supported: {type(node).__name__}")  # _digits already refused it


def _terms(expr: sympy.Basic) -> int:
    """Upper bound on the terms ``sympy.expand`` makes of the expression, capped at MAX_TERMS + 1."""
    if expr.is_Add:
        count = sum(_terms(arg) for arg in expr.args)
    elif expr.is_Mul:
        count = math.prod(_terms(arg) for arg in expr.args)
    elif expr.is_Pow:  # (a_1 + ... + a_t)**n has comb(t + n - 1, n) terms; x**(n + y) splits off x**n
        base, power = _terms(expr.base), expr.exp.as_coeff_Add()[0]
        n = int(abs(power)) if power.is_Rational else 0  # the base is expanded inside, whatever n
        count = max(base, math.comb(base + n - 1, n))
    else:  # a symbol, a number, or a function whose argument expand expands
        count = max((_terms(arg) for arg in expr.args), default=1)
    return min(count, MAX_TERMS + 1)


def _same(a: sympy.Expr, b: sympy.Expr, rel_tol: float) -> bool:
    if any(x.has(sympy.zoo, sympy.nan) or (x.is_number and not x.is_finite) for x in (a, b)):
        return False  # 1/0 -> zoo, x/0, oo, nan are never an answer match
    if a == b:
        return True
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    if a.is_Integer and b.is_Integer:
        return False  # two different integers: no tolerance (2**99999 + 1 is not 2**99999)
    if not symbols:
        return _close(sympy.N(a, 30), sympy.N(b, 30), rel_tol)
    difference = sympy.expand(a - b)
    if difference == 0:
        return True
    rng = random.Random(0)
    for _ in range(3):  # a point where they differ settles it before the costly simplify
        point = {s: sympy.Rational(rng.randint(1, 97), rng.randint(1, 13)) for s in symbols}
        if not _close(sympy.N(a, 30, subs=point), sympy.N(b, 30, subs=point), rel_tol):
            return False
    return sympy.count_ops(difference) <= MAX_SIMPLIFY_OPS and sympy.simplify(a - b) == 0


def _close(x: sympy.Expr, y: sympy.Expr, rel_tol: float) -> bool:
    if not (x.is_number and y.is_number) or not (x.is_finite and y.is_finite):
        return False
    difference = sympy.N(sympy.Abs(x - y), 30)
    scale = max(sympy.Integer(1), sympy.N(sympy.Abs(x), 30), sympy.N(sympy.Abs(y), 30))  # symmetric
    return bool(difference <= rel_tol * scale)
