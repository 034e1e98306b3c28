"""The sandbox's verdict (see `prefpipe.verify.sandbox`, "Forging a pass"): which tests the parent
judges itself, and how the child's result lines become a `SandboxResult`.

Tests of the form ``assert EXPR == LITERAL`` are split here: the child is sent only EXPR and the
parent compares the value it returns with the LITERAL. Result lines count only when tagged with the
run's nonce and well formed; anything else voids the run (status "blocked")."""
from __future__ import annotations

import ast
import signal
from dataclasses import dataclass

STATUSES = ("ok", "timeout", "memory", "crashed", "blocked", "syntax_error")
MAX_RESULT_BYTES = 1 << 20  # a results channel longer than this is a forgery attempt


@dataclass(frozen=True)
class SandboxResult:
    passed: int
    total: int
    status: str  # one of STATUSES
    detail: str
    wall_s: float

    @property
    def reward(self) -> float:
        """Fraction of tests passed; 0 when the candidate never ran or was blocked."""
        return self.passed / self.total if self.total else 0.0


def split_test(test: str) -> tuple[str, object] | None:
    """(EXPR source, expected value) for ``assert EXPR == LITERAL`` (either side literal), else None."""
    try:
        node = ast.parse(test, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if len(node.body) != 1 or not isinstance(node.body[0], ast.Assert):
        return None
    compare = node.body[0].test
    if not (isinstance(compare, ast.Compare) and len(compare.ops) == 1
            and isinstance(compare.ops[0], ast.Eq)):
        return None
    for expr, literal in ((compare.left, compare.comparators[0]), (compare.comparators[0], compare.left)):
        try:
            expected = ast.literal_eval(literal)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            continue
        return ast.get_source_segment(test, expr), expected
    return None


def score(results: bytes, nonce: str, split: list, returncode: int, timed_out: bool, output: bytes,
           wall: float) -> SandboxResult:
    """Turn the child's result lines into a SandboxResult; only nonce-tagged, well-formed lines count."""
    total = len(split)
    events, passed, seen, failures = set(), set(), set(), []
    forged = len(results) > MAX_RESULT_BYTES or (results and not results.endswith(b"\n"))
    for line in results.decode("utf-8", "replace").splitlines():
        parts = line.split(" ", 3) + ["", ""]
        tag, kind, index, info = parts[0], parts[1], parts[2], parts[3]
        if tag != nonce or not index.lstrip("-").isdigit():
            forged = True
            continue
        i = int(index)
        if kind in ("pass", "fail", "value"):
            wrong_kind = (kind == "value") == (split[i] is None) if kind != "fail" else False
            if not 0 <= i < total or i in seen or wrong_kind:
                forged = True
                continue
            seen.add(i)
            if kind == "pass" or (kind == "value" and literal_equals(info, split[i][1])):
                passed.add(i)
            elif len(failures) < 3:
                failures.append(f"test {i}: {'' if kind == 'fail' else 'got '}{info[:120]}")
        else:
            events.add(kind)
            if kind in ("blocked", "crashed", "memory", "syntax_error") and len(failures) < 3:
                failures.append(f"{kind}: {info[:200]}")
    if forged:
        status, failures = "blocked", ["forged or malformed result line"] + failures
    elif "blocked" in events:
        status = "blocked"
    elif "syntax_error" in events:
        status = "syntax_error"
    elif timed_out or returncode in (-signal.SIGKILL, -signal.SIGXCPU):
        status = "timeout"
    elif "memory" in events:
        status = "memory"
    elif "crashed" in events or "done" not in events or returncode != 0:
        status = "crashed"
        failures.append("the harness did not finish" if "done" not in events else "nonzero exit")
    else:
        status = "ok"
    n_passed = 0 if status in ("blocked", "syntax_error") else len(passed)
    detail = f"{n_passed}/{total} passed; status {status} (exit {returncode}); " + "; ".join(failures)
    if output:
        detail += "\noutput tail:\n" + output.decode("utf-8", "replace")
    return SandboxResult(n_passed, total, status, detail, wall)


def literal_equals(text: str, expected: object) -> bool:
    try:
        return ast.literal_eval(text) == expected
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return False
