"""Answer checks shared by the gold preference and the verifiers: no code is ever executed."""
from __future__ import annotations

import ast
import re

from prefpipe.world.content import CODE_TEST_INPUTS

ARITHMETIC_CORE = re.compile(r"^(?:(-?\d+) ([+-]) (-?\d+) = (-?\d+)\.|The answer is (-?\d+)\.)$")
CODE_CORE = re.compile(r"^def ([A-Za-z_]\w*)\(a, b\): return (.+)$")
MAX_EXPRESSION_CHARS = 500
FINAL_NUMBER = re.compile(r"(-?\d+)(?!.*\d)", re.S)

_BINARY = {ast.Add: lambda x, y: x + y, ast.Sub: lambda x, y: x - y, ast.Mult: lambda x, y: x * y}
_CALLS = {"max": (max, 2), "min": (min, 2), "abs": (abs, 1)}  # name -> (function, arity)


class UnsafeExpression(ValueError):
    """The expression uses something outside + - * max min abs, names a, b and small ints."""


def evaluate_expression(expr: str, a: int, b: int) -> int:
    """Evaluate a tiny arithmetic expression over a and b by walking its AST (never exec/eval)."""
    if len(expr) > MAX_EXPRESSION_CHARS:
        raise UnsafeExpression(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as err:
        raise UnsafeExpression(f"not an expression: {expr[:40]!r}") from err
    except (RecursionError, MemoryError) as err:
        raise UnsafeExpression(f"expression nested too deeply: {expr[:40]!r}") from err
    try:
        return _walk(tree.body, {"a": a, "b": b})
    except RecursionError as err:
        raise UnsafeExpression(f"expression nested too deeply: {expr[:40]!r}") from err


def _walk(node: ast.AST, names: dict[str, int]) -> int:
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_walk(node.left, names), _walk(node.right, names))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_walk(node.operand, names)
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Constant) and type(node.value) is int and abs(node.value) < 1000:
        return node.value
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CALLS
            and not node.keywords and len(node.args) == _CALLS[node.func.id][1]):
        function = _CALLS[node.func.id][0]
        return function(*(_walk(arg, names) for arg in node.args))
    raise UnsafeExpression(f"unsupported syntax: {ast.dump(node)[:60]}")


def code_pass_fraction(expr: str, expected_expr: str) -> float:
    """Fraction of the fixed test inputs on which `expr` equals the reference expression."""
    passed = sum(
        evaluate_expression(expr, a, b) == evaluate_expression(expected_expr, a, b)
        for a, b in CODE_TEST_INPUTS
    )
    return passed / len(CODE_TEST_INPUTS)


def final_number(text: str) -> int | None:
    """The last integer in a response (how math verifiers read a final answer)."""
    match = FINAL_NUMBER.search(text)
    return int(match.group(1)) if match else None
