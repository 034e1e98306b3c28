"""The train_reward stage's data path (`tasks.train_reward`): the split counted from the prompt_id
column, the train side tokenised from the Parquet file a record batch at a time, the held-out side read
as dicts; the same split, the same error messages and bit-identical weights as the dicts path it
replaced (`split_by_prompt` of every row, the train dicts handed to the trainer)."""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from prefpipe.data.tokenised_pairs import parquet_rows, tokenise_parquet
from prefpipe.evaluate.reward_eval import on_side, split_by_prompt
from prefpipe.train.reward import train_reward_model
from tasks._stage import StageInputError
from tasks.train_reward import split_preferences
from tests.train import tiny


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def preferences(n: int = 40, prompts: int = 10) -> list[dict]:
    """tiny's pairs, several to a prompt, with the label stage's finished columns."""
    rows = tiny.pairs(n)
    for i, row in enumerate(rows):
        row.update(prompt_id=f"p{i % prompts}", category="arithmetic", chosen_finished=i % 3 != 0,
                   rejected_finished=i % 4 != 1)
    return rows


def written(tmp_path, rows: list[dict]):
    path = tmp_path / "preferences.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_the_split_and_its_counts_are_split_by_prompts(tmp_path):
    rows = preferences()
    path = written(tmp_path, rows)
    train, val = split_by_prompt(rows, 0.3, seed=0)
    held_out, n_train, n_val = split_preferences(path, 0.3, 0)
    assert (n_train, n_val) == (len(train), len(val)) and 0 < len(val) < len(rows)
    assert held_out == {row["prompt_id"] for row in val}
    assert [r for part in parquet_rows(path, on_side(held_out, True), chunk_rows=7) for r in part] == val
    assert [r for part in parquet_rows(path, on_side(held_out, False), chunk_rows=7) for r in part] == train


def test_the_train_split_tokenised_from_parquet_trains_the_weights_the_dicts_did(tok, tmp_path):
    rows = preferences()
    path = written(tmp_path, rows)
    params = tiny.reward_params(margin_scale=0.5)  # the confidences count too
    train, _ = split_by_prompt(rows, 0.3, seed=0)
    old = tiny.reward_model(tok)
    old_history = train_reward_model(old, tok, train, params, 24, 0)

    held_out, n_train, _ = split_preferences(path, 0.3, 0)
    new = tiny.reward_model(tok)
    with tokenise_parquet(tok, path, keep=on_side(held_out, False), chunk_rows=8) as data:  # 5 batches
        assert len(data) == n_train
        new_history = train_reward_model(new, tok, data, params, 24, 0)
        assert data.path.exists()  # the stage's to close
    assert not data.path.exists()
    assert [float(r["loss"]) for r in new_history] == [float(r["loss"]) for r in old_history]
    assert len(old_history) > 1
    for (name, want), got in zip(old.state_dict().items(), new.state_dict().values()):
        assert torch.equal(got, want), name


def test_empty_sides_and_missing_files_raise_the_messages_of_the_dicts_path(tmp_path):
    path = written(tmp_path, preferences())
    with pytest.raises(StageInputError, match=r"^reward\.val_fraction 0\.0 leaves no validation pairs "
                                              r"among 40 preferences on 10 prompts; raise it$"):
        split_preferences(path, 0.0, 0)
    with pytest.raises(StageInputError, match=r"^reward\.val_fraction 1\.0 leaves no training pairs "
                                              r"among 40 preferences on 10 prompts; lower it$"):
        split_preferences(path, 1.0, 0)
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.Table.from_pylist(preferences()).slice(0, 0), empty)
    with pytest.raises(StageInputError, match=f"^{re.escape(str(empty))}: no decisive preferences to "
                                              "train on$"):
        split_preferences(empty, 0.15, 0)
    with pytest.raises(FileNotFoundError, match="nothing.parquet: missing; run the stage that writes it"):
        split_preferences(tmp_path / "nothing.parquet", 0.15, 0)
