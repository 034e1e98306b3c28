"""Math verifier: pull the final answer out of a response and test it for equivalence with sympy.

Extraction follows the conventions of the MATH benchmark (Hendrycks et al. 2021): a ``\\boxed{...}``
answer wins, then "The answer is X", then a trailing "= X.", then the last number in the text.

Equivalence parses both sides without ever evaluating code: the text is normalised (a small LaTeX
subset, unicode minus, implicit multiplication), parsed by ``ast.parse`` (which only builds a tree),
checked against a whitelist of node types, bounded in size (so ``9**9**9`` is rejected before any
arithmetic runs) and only then turned into a sympy expression node by node. Two answers are equal if
they are numerically equal within a relative tolerance or ``simplify(a - b) == 0``.
``sympy.parsing.sympy_parser.parse_expr`` is not used on purpose: it ``eval``s the transformed string.
"""
from __future__ import annotations

import ast
import functools
import math
import random
import re

import sympy

MAX_ANSWER_CHARS = 200  # longer answers (candidate or reference) are not compared: False
MAX_RESULT_DIGITS = 100_000  # bound on the decimal digits any sub-expression may reach
MAX_EXPONENT = 100_000  # a literal exponent above this is refused outright

_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u00d7": "*", "\u00f7": "/", "\u22c5": "*"})
_NUMBER = r"-?\d+(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?"
_LAST_NUMBER = re.compile(rf"({_NUMBER})(?!.*\d)", re.S)
_ANSWER_IS = re.compile(r"answer is:?\s*(.+?)(?:\.(?=\s)|\.?$|\n)", re.I | re.M)
_TRAILING_EQUALS = re.compile(r"=\s*((?:[^=\n.]|\.(?=\d))+?)\s*\.?\s*$")  # "." only inside numbers
_FUNCTIONS = {"sqrt": sympy.sqrt, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan,
              "log": sympy.log, "ln": sympy.log, "exp": sympy.exp, "abs": sympy.Abs}
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
    trailing = _TRAILING_EQUALS.search(text.strip())
    if trailing:
        return trailing.group(1).strip().strip("$").strip()
    number = _LAST_NUMBER.search(text)
    return number.group(1).replace(" ", "") if number else None


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

    Inputs longer than MAX_ANSWER_CHARS, outside the supported syntax, or whose size bound exceeds
    MAX_RESULT_DIGITS give False."""
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
    return _build(tree.body, source)


def normalise(answer: str) -> str:
    """LaTeX subset (``\\frac``, ``\\sqrt``, ``\\cdot``, ``^``) and unicode to Python syntax."""
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
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if not math.isfinite(node.value):
            raise _Refused("number too large")
        magnitude = int(math.log10(abs(node.value))) + 1 if node.value else 1  # 1e300 is 301 digits
        return max(len(ast.get_source_segment(source, node) or "1"), magnitude)
    if isinstance(node, ast.Name):
        return 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        return _digits(node.operand, source)
    if isinstance(node, ast.BinOp):
        left, right = _digits(node.left, source), _digits(node.right, source)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            bound = max(left, right) + 1
        elif isinstance(node.op, (ast.Mult, ast.Div)):
            bound = left + right
        elif isinstance(node.op, ast.Pow):
            bound = left * _exponent_bound(node.right, right)
        else:
            raise _Refused(f"operator {type(node.op).__name__} not supported")
        if bound > MAX_RESULT_DIGITS:
            raise _Refused(f"value may exceed {MAX_RESULT_DIGITS} digits")
        return bound
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and len(node.args) == 1 and not node.keywords):
        return _digits(node.args[0], source)
    raise _Refused(f"syntax not supported: {type(node).__name__}")


def _exponent_bound(node: ast.AST, digits: int) -> int:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        return _exponent_bound(node.operand, digits)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        if abs(node.value) > MAX_EXPONENT:
            raise _Refused(f"exponent {node.value} above {MAX_EXPONENT}")
        return max(1, math.ceil(abs(node.value)))
    if digits > 4:
        raise _Refused("exponent may exceed the size bound")
    return 10 ** digits


def _build(node: ast.AST, source: str) -> sympy.Expr:
    if isinstance(node, ast.Constant):
        return sympy.Rational(ast.get_source_segment(source, node))  # exact: "0.1" -> 1/10
    if isinstance(node, ast.Name):
        return _CONSTANTS.get(node.id) or sympy.Symbol(node.id)
    if isinstance(node, ast.UnaryOp):
        operand = _build(node.operand, source)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _build(node.left, source), _build(node.right, source)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
        return left ** right
    if isinstance(node, ast.Call):
        return _FUNCTIONS[node.func.id](_build(node.args[0], source))
    raise _Refused(f"syntax not supported: {type(node).__name__}")  # _digits already refused it


def _same(a: sympy.Expr, b: sympy.Expr, rel_tol: float) -> bool:
    if any(not x.is_finite for x in (a, b) if x.is_number):
        return False  # 1/0 -> zoo, oo, nan are never an answer match
    if a == b:
        return True
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    if a.is_Integer and b.is_Integer:
        return False  # two different integers: no tolerance (2**99999 + 1 is not 2**99999)
    if not symbols:
        return _close(sympy.N(a, 30), sympy.N(b, 30), rel_tol)
    if sympy.expand(a - b) == 0:
        return True
    rng = random.Random(0)
    for _ in range(3):  # a point where they differ settles it before the costly simplify
        point = {s: sympy.Rational(rng.randint(1, 97), rng.randint(1, 13)) for s in symbols}
        if not _close(sympy.N(a.subs(point), 30), sympy.N(b.subs(point), 30), rel_tol):
            return False
    return sympy.simplify(a - b) == 0


def _close(x: sympy.Expr, y: sympy.Expr, rel_tol: float) -> bool:
    if not (x.is_number and y.is_number) or not (x.is_finite and y.is_finite):
        return False
    difference = sympy.N(sympy.Abs(x - y), 30)
    return bool(difference <= rel_tol * max(sympy.Integer(1), sympy.N(sympy.Abs(y), 30)))
