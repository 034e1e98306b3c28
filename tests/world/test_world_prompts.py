"""The prompt catalogue of the default world and its train / heldout split."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from prefpipe.world.catalog import to_checked_prompt, to_world_prompt, user_prompt_rows, world_prompt_rows
from prefpipe.world.content import BENIGN_REQUESTS, CODE_TASKS, EXPLAIN_TOPICS, HARMFUL_REQUESTS
from prefpipe.world.prompts import EMBEDDED, WorldPrompt, all_prompts, prompt_id, split_prompts


@pytest.mark.parametrize("max_operand", [1, 5, 20])
def test_prompt_counts_per_family(max_operand):
    counts = Counter(p.family for p in all_prompts(max_operand))
    n = max_operand + 1
    plus = n * n
    minus = n * (n + 1) // 2  # b <= a keeps answers non-negative
    assert counts == {
        "arithmetic": 4 * (plus + minus),
        "explain": len(EXPLAIN_TOPICS) * 5,
        "code": len(CODE_TASKS) * 8 * 3,
        "harmful": len(HARMFUL_REQUESTS) * 3,
        "benign": len(BENIGN_REQUESTS) * 3,
    }
    assert counts["explain"] == 150 and counts["code"] == 192
    assert counts["harmful"] == counts["benign"] == 45


def test_prompt_ids_are_unique_hashes_of_text():
    prompts = all_prompts(5)
    assert len({p.prompt_id for p in prompts}) == len(prompts)
    assert all(p.prompt_id == prompt_id(p.prompt) and len(p.prompt_id) == 16 for p in prompts)


def test_arithmetic_meta_is_right():
    for p in all_prompts(4):
        if p.family == "arithmetic":
            a, b, op = p.meta["a"], p.meta["b"], p.meta["op"]
            assert p.meta["answer"] == (a + b if op == "+" else a - b) >= 0
            assert str(a) in p.prompt and str(b) in p.prompt


def test_all_prompts_order_is_fixed():
    assert [p.prompt_id for p in all_prompts(3)] == [p.prompt_id for p in all_prompts(3)]


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_split_is_stratified_by_family(fraction):
    prompts = all_prompts(5)
    split = split_prompts(prompts, fraction, seed=0)
    assert set(split) == {p.prompt_id for p in prompts}
    assert set(split.values()) == {"train", "heldout"}
    by_family = Counter(p.family for p in prompts)
    held = Counter(p.family for p in prompts if split[p.prompt_id] == "heldout")
    for family, n in by_family.items():
        assert held[family] == max(1, round(n * fraction)), family


def test_split_holds_out_at_least_one_per_family():
    prompts = all_prompts(1)
    split = split_prompts(prompts, 0.001, seed=3)
    held = {p.family for p in prompts if split[p.prompt_id] == "heldout"}
    assert held == {p.family for p in prompts}


def test_split_is_deterministic_and_seeded():
    prompts = all_prompts(5)
    assert split_prompts(prompts, 0.2, 1) == split_prompts(prompts, 0.2, 1)
    assert split_prompts(prompts, 0.2, 1) != split_prompts(prompts, 0.2, 2)


def test_world_rows_round_trip_to_world_prompts():
    rows = world_prompt_rows(2, 0.2, seed=0)
    assert len(rows) == len(all_prompts(2))
    for row in rows[::17]:
        prompt = to_world_prompt(row)
        assert prompt.prompt == row["prompt"] and prompt.family == row["category"]
        assert prompt.meta == json.loads(row["meta"])


def test_user_rows_have_no_gold_and_stable_split():
    rows = [{"prompt": f"question {i}", "category": "default"} for i in range(400)]
    out = user_prompt_rows(rows, "my.jsonl", 0.25, seed=0)
    assert out == user_prompt_rows(rows, "my.jsonl", 0.25, seed=0)
    assert all(r["meta"] is None and to_world_prompt(r) is None for r in out)
    share = sum(r["split"] == "heldout" for r in out) / len(out)
    assert 0.15 < share < 0.35


def test_user_rows_carry_their_answer_or_tests_as_meta_but_no_gold():
    rows = [{"prompt": "What is 6 times 7?", "category": "math", "answer": "42"},
            {"prompt": "Write add(a, b).", "category": "code", "tests": ["assert add(1, 2) == 3"]},
            {"prompt": "Say hi.", "category": "chat"}]
    math, code, chat = user_prompt_rows(rows, "mine.jsonl", 0.25, seed=0)
    assert math["meta"] == '{"answer": "42"}' and code["meta"] == '{"tests": ["assert add(1, 2) == 3"]}'
    assert chat["meta"] is None and to_checked_prompt(chat) is None
    assert [to_world_prompt(r) for r in (math, code, chat)] == [None, None, None]  # gold is the world's
    assert to_checked_prompt(math) == WorldPrompt(prompt_id("What is 6 times 7?"), "math",
                                                  "What is 6 times 7?", {"answer": "42"}, "mine.jsonl")
    assert to_checked_prompt(code).meta == {"tests": ["assert add(1, 2) == 3"]}
    assert to_checked_prompt(code).source == "mine.jsonl"


def test_world_rows_are_checked_as_the_world_prompts_they_are():
    rows = world_prompt_rows(2, 0.2, seed=0)
    assert all(to_checked_prompt(r) == to_world_prompt(r) for r in rows[::11])
    assert {to_checked_prompt(r).source for r in rows[::11]} == {EMBEDDED}
