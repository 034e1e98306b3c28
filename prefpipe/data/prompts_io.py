"""Load prompts from Parquet, JSONL or a `datasets` folder, validating every row first.

A bad row is reported with its file and place ('line N' in JSONL, 'row index N' otherwise; see
`readers`), and nothing of that file is used. A row repeating an earlier one (the same prompt,
stripped, and the same other values) is dropped with a warning that counts them; the same prompt
with another category is an error naming both rows, since which labeler judges it depends on it.

A row may also give the verifier something to check (`prompt_reference`): a reference final answer
(text or a number) or tests (a list of Python assert statements, or one text with one per line);
both, a value of the wrong type or a test that is not Python is an error naming the row and column."""
from __future__ import annotations

import ast
import logging
import math
from pathlib import Path

from prefpipe.data.readers import read_records
from prefpipe.errors import DataError
from prefpipe.vocab import Reference

__all__ = ["DataError", "has_reference", "load_prompt_rows", "prompt_reference"]

log = logging.getLogger("prefpipe")
LONG_ANSWER = 200  # characters; the verifier compares no longer answer (verify.math_answer)


def load_prompt_rows(path: str | Path, prompt_column: str, category_column: str,
                     answer_column: str = Reference.ANSWER.value,
                     tests_column: str = Reference.TESTS.value) -> list[dict]:
    """[{'prompt', 'category'}] from the user's file, plus 'answer' (text) or 'tests' (a list of
    statements) where a row gives one; every row is checked before any is kept. An empty
    `answer_column` / `tests_column` reads no such column."""
    records = read_records(path)
    if not records:
        raise DataError(f"{path}: no rows")
    rows, seen, repeats = [], {}, []  # seen: prompt -> (where, row); repeats: (where, first where)
    for where, record in records:
        if prompt_column not in record:
            raise DataError(f"{path}: {where}: missing column '{prompt_column}' "
                            f"(set data.prompt_column; columns here: {', '.join(record)})")
        prompt = record[prompt_column]
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"{path}: {where}: column '{prompt_column}' must be non-empty "
                            f"text, got {prompt!r}")
        category = record.get(category_column) or "default"
        if not isinstance(category, str):
            raise DataError(f"{path}: {where}: column '{category_column}' must be text, "
                            f"got {category!r}")
        prompt = prompt.strip()
        row = {"prompt": prompt, "category": category,
               **prompt_reference(path, where, record, answer_column, tests_column)}
        if prompt in seen:
            repeats.append((where, _same_prompt(path, prompt, seen[prompt], (where, row))))
            continue
        seen[prompt] = (where, row)
        rows.append(row)
    if repeats:
        log.warning("%s: dropped %d duplicate prompt row(s), e.g. %s repeats %s", path, len(repeats),
                    *repeats[0])
    long = sum(len(row.get(Reference.ANSWER, "")) > LONG_ANSWER for row in rows)
    if long:
        log.warning("%s: %d answer(s) in column '%s' are over %d characters, which the verifier counts as "
                    "never matched; it wants a final answer (a number or an expression). If the column "
                    "holds worked solutions, set data.answer_column to ''", path, long, answer_column,
                    LONG_ANSWER)
    return rows


def has_reference(record: dict, answer_column: str, tests_column: str) -> bool:
    """Whether a record gives an answer or tests (unchecked: `prompt_reference` checks them)."""
    return any(column and not _blank(record.get(column)) for column in (answer_column, tests_column))


def prompt_reference(path: str | Path, where: str, record: dict, answer_column: str,
                     tests_column: str) -> dict:
    """{'answer': text}, {'tests': [statement, ...]} or {} from a record's optional columns (a
    missing, null or blank value is none); an empty column name reads nothing."""
    answer = None if not answer_column or _blank(record.get(answer_column)) else record[answer_column]
    tests = None if not tests_column or _blank(record.get(tests_column)) else record[tests_column]
    if answer is not None and tests is not None:
        raise DataError(f"{path}: {where}: both '{answer_column}' and '{tests_column}' are set; a prompt is "
                        "checked by a reference answer (math) or by tests (code): keep one")
    if answer is not None:
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            raise DataError(f"{path}: {where}: column '{answer_column}' must be the reference final answer "
                            f"as text or a number, got {answer!r}")
        if isinstance(answer, float) and not math.isfinite(answer):
            raise DataError(f"{path}: {where}: column '{answer_column}' must be a finite number, "
                            f"got {answer}")
        return {Reference.ANSWER.value: str(answer).strip()}
    if tests is not None:
        return {Reference.TESTS.value: _tests(path, f"{where}: column '{tests_column}'", tests)}
    return {}


def _tests(path: str | Path, where: str, value: object) -> list[str]:
    """The test statements of a tests cell: a list of texts, or one text with one per line."""
    if isinstance(value, str):
        tests = [line.strip() for line in value.splitlines() if line.strip()]
    elif isinstance(value, list) and all(isinstance(test, str) and test.strip() for test in value):
        tests = [test.strip() for test in value]
    else:
        raise DataError(f"{path}: {where}: must be a list of Python assert statements (non-empty texts) "
                        f"or one text of them, one per line; got {value!r}")
    for n, test in enumerate(tests, start=1):
        try:
            tree = ast.parse(test)
        except SyntaxError as err:
            raise DataError(f"{path}: {where}: test {n} is not valid Python ({err.msg}): {test[:80]!r}; "
                            "one statement per line") from err
        if not any(isinstance(node, ast.Assert) for node in ast.walk(tree)):
            raise DataError(f"{path}: {where}: test {n} has no assert statement, so it could never fail: "
                            f"{test[:80]!r}")
    return tests


def _blank(value: object) -> bool:
    """A missing value: None, blank text or an empty list."""
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _same_prompt(path: str | Path, prompt: str, first: tuple[str, dict], again: tuple[str, dict]) -> str:
    """Where the earlier row is, if `again` repeats it exactly; else a DataError naming both rows."""
    (first_where, first_row), (where, row) = first, again
    differ = [key for key in {**first_row, **row} if row.get(key) != first_row.get(key)]
    if differ:
        values = "; ".join(f"{key} {first_row.get(key)!r} vs {row.get(key)!r}" for key in differ)
        raise DataError(f"{path}: {where}: prompt {prompt[:60]!r} is also at {first_where} with other "
                        f"values ({values}); keep one row per prompt")
    return first_where
