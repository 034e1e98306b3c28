"""Params of the prompts (`data` section): the embedded world or your own file, and its columns."""
from __future__ import annotations

from dataclasses import dataclass

from prefpipe.config.knobs import knob
from prefpipe.vocab import Reference

EMBEDDED = "embedded"


@dataclass(frozen=True)
class DataParams:
    prompts: str = knob(EMBEDDED, "'embedded' (the default world) or a Parquet / JSONL / datasets folder")
    prompt_column: str = knob("prompt", "column holding the prompt text in your data")
    category_column: str = knob("category", "column holding the category (optional in your data)")
    answer_column: str = knob(Reference.ANSWER.value, "optional column: a math prompt's reference final "
                              "answer (text or number), which the verifier and GRPO check responses "
                              "against ('' = none)")
    tests_column: str = knob(Reference.TESTS.value, "optional column: a code prompt's tests (a list of "
                             "Python assert statements, or one text of them one per line), run against "
                             "the response's code ('' = none)")
    heldout_fraction: float = knob(0.2, "share of prompts kept out of training for evaluation")

    def validate(self) -> str | None:
        if not 0.0 < self.heldout_fraction < 1.0:
            return f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}"
        if self.answer_column and self.answer_column == self.tests_column:
            return (f"answer_column and tests_column must name different columns, both are "
                    f"'{self.answer_column}'")
        taken = {self.prompt_column: "prompt_column", self.category_column: "category_column"}
        for name, column in (("answer_column", self.answer_column), ("tests_column", self.tests_column)):
            if column and column in taken:
                return f"{name} '{column}' is also data.{taken[column]}; name another column (or '' for none)"
        return None
