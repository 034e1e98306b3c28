"""Head to head on gold: a hand-computed duel, and a sampled responder that is sample_responses
with one seed for whichever side uses it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
import tiny  # noqa: E402

from prefpipe.config.schema import SamplingParams  # noqa: E402
from prefpipe.evaluate.versus import gold_head_to_head, sampled_responder  # noqa: E402
from prefpipe.models.generation import sample_responses  # noqa: E402
from prefpipe.world.prompts import WorldPrompt  # noqa: E402


def arithmetic(pid: str, a: int, op: str, b: int) -> WorldPrompt:
    answer = a + b if op == "+" else a - b
    meta = {"a": a, "b": b, "op": op, "answer": answer}
    return WorldPrompt(pid, "arithmetic", f"What is {a} {op} {b}?", meta)


PROMPTS = [arithmetic("q1", 2, "+", 3), arithmetic("q2", 1, "+", 3), arithmetic("q3", 4, "-", 1),
           arithmetic("q4", 2, "-", 2)]
# gold scores: 3 per correct core, -1 per flaw (an opener "Sure thing!" / "Great question!"),
# -100 for what never finished
FIRST = {"What is 2 + 3?": ("The answer is 5.", True),               # 3
         "What is 1 + 3?": ("1 + 3 = 4.", True),                     # 3
         "What is 4 - 1?": ("Sure thing! The answer is 3.", True),   # 2
         "What is 2 - 2?": ("The answer is 1.", True)}               # 0 (wrong)
SECOND = {"What is 2 + 3?": ("The answer is 6.", True),              # 0 (wrong)  -> first wins
          "What is 1 + 3?": ("1 + 3 = 4.", True),                    # 3          -> tie
          "What is 4 - 1?": ("The answer is", False),                # -100       -> first wins
          "What is 2 - 2?": ("Great question! The answer is 0.", True)}  # 2      -> second wins


def answers(table: dict[str, tuple[str, bool]]):
    return lambda texts: [table[t] for t in texts]


def test_the_first_sides_gold_win_rate_and_interval_by_hand():
    report = gold_head_to_head(PROMPTS, answers(FIRST), answers(SECOND))
    # outcomes 1, 0.5, 1, 0: mean 0.625; sample variance 0.6875 / 3; half width
    # 1.959964 * sqrt(0.6875 / 3 / 4) = 0.469131
    assert report["win_rate"] == pytest.approx(0.625)
    assert report["win_rate_low"] == pytest.approx(0.155869, abs=1e-6)
    assert report["win_rate_high"] == pytest.approx(1.094131, abs=1e-6)
    assert (report["wins"], report["ties"], report["losses"], report["prompts"]) == (2, 1, 1, 4)
    assert report["first_correct"] == pytest.approx(0.75) and report["second_correct"] == pytest.approx(0.5)
    assert report["first_well_formed"] == 1.0 and report["second_well_formed"] == pytest.approx(0.75)
    assert not any(key.startswith(("policy_", "reference_")) for key in report)


def test_swapping_the_sides_mirrors_the_outcomes():
    report = gold_head_to_head(PROMPTS, answers(SECOND), answers(FIRST))
    assert report["win_rate"] == pytest.approx(0.375)
    assert (report["wins"], report["ties"], report["losses"]) == (1, 1, 2)


@pytest.fixture(scope="module")
def tok():
    tokenizer = tiny.tokenizer()
    tokenizer.padding_side = "left"
    return tokenizer


def test_a_sampled_responder_answers_once_per_prompt_with_its_seed(tok):
    model = tiny.policy_lm(tok)
    sampling = SamplingParams(max_new_tokens=12, batch_size=2)
    texts = ["yes no", "the answer is", "sum two four"]
    drawn = [(s.response, s.finished) for s in sample_responses(model, tok, texts, 1, sampling, seed=7)]
    assert sampled_responder(model, tok, sampling, seed=7)(texts) == drawn
    assert sampled_responder(model, tok, sampling, seed=7)(texts) == drawn  # the other side: same answers
    assert sampled_responder(model, tok, sampling, seed=8)(texts) != drawn  # the seed keeps them equal

