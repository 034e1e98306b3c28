"""gold_report's per-family rows: their columns are FAMILY_COLUMNS, the header of
plots/eval_by_family.csv even when a run has no gold (tasks/evaluate.py)."""
from __future__ import annotations

from prefpipe.evaluate.compare import FAMILY_COLUMNS, gold_report
from prefpipe.world.prompts import all_prompts


def test_family_rows_have_exactly_the_family_columns():
    prompts = all_prompts(3)[:12]
    report, rows = gold_report(prompts, [("4", True)] * len(prompts), [("", False)] * len(prompts))
    assert rows and all(tuple(row) == FAMILY_COLUMNS for row in rows)
    assert sum(row["prompts"] for row in rows) == len(prompts)
    assert 0.0 <= report["win_rate"] <= 1.0
