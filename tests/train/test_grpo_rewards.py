"""GRPO's reward functions as the train_policy stage builds them (`tasks.train_policy`): the training
prompts come back with what checks them, and the verifier reward scores your own prompts by the
answer or tests they carry, called with TRL's `reward_funcs` keywords as `prefpipe.train.grpo` does."""
from __future__ import annotations

import pyarrow as pa
import pytest

from prefpipe.config.schema import Params
from prefpipe.store import write_parquet
from prefpipe.world.catalog import user_prompt_rows, world_prompt_rows
from tasks import paths
from tasks.train_policy import training_prompts, verifier_rewards

USER_ROWS = [{"prompt": "What is 6 times 7?", "category": "math", "answer": "42"},
             {"prompt": "Write add(a, b).", "category": "code",
              "tests": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]},
             {"prompt": "Say hi.", "category": "chat"}]
FENCED_ADD = "```python\ndef add(a, b):\n    return a + b\n```"


@pytest.fixture
def user_prompts(tmp_path, monkeypatch):
    """data/prompts.parquet of USER_ROWS, all in the training split, as the prepare stage writes it."""
    monkeypatch.chdir(tmp_path)
    rows = [{**row, "split": "train"} for row in user_prompt_rows(USER_ROWS, "mine.jsonl", 0.2, seed=0)]
    paths.DATA.mkdir(parents=True, exist_ok=True)
    write_parquet(pa.Table.from_pylist(rows), paths.PROMPTS)
    return training_prompts(Params())


def test_training_prompts_carry_what_checks_them(user_prompts):
    math, code, chat = user_prompts
    assert (math.meta, math.source) == ({"answer": "42"}, "mine.jsonl")
    assert code.meta == {"tests": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]}
    assert chat.meta == {}  # nothing to check: GRPO's pool leaves it out


def test_the_verifier_reward_scores_your_prompts_by_answer_and_tests(user_prompts):
    [reward] = verifier_rewards(user_prompts, Params())
    completions = ["The answer is 42.", " The answer is \\boxed{41} ", FENCED_ADD,
                   "def add(a, b):\n    return a * 2", FENCED_ADD]
    values = reward(prompts=[""] * 5, completions=completions, completion_ids=[[]] * 5,
                    prompt_index=[0, 0, 1, 1, 1], finished=[True, True, True, True, False])
    # add(1, 2) == 2 fails, add(2, 2) == 4 passes: half the tests; unfinished: 0
    assert values == [1.0, 0.0, 1.0, 0.5, 0.0]


def test_the_embedded_world_keeps_its_fast_reward(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [row for row in world_prompt_rows(2, 0.2, seed=0) if row["prompt"] == "What is 1 plus 2?"]
    paths.DATA.mkdir(parents=True, exist_ok=True)
    write_parquet(pa.Table.from_pylist([{**rows[0], "split": "train"}]), paths.PROMPTS)
    [reward] = verifier_rewards(training_prompts(Params()), Params())
    assert reward(completions=["The answer is 3.", "The answer is 4."], prompt_index=[0, 0],
                  finished=[True, True]) == [1.0, 0.0]
