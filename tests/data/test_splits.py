"""Your prompts' splits are counted before any stage: an empty split fails naming its knob."""
from __future__ import annotations

import json
import logging

import pytest
import yaml

from prefpipe.config import ParamsError, load_params
from prefpipe.data.splits import check_splits, count_splits
from prefpipe.seeds import SplitPurpose, split_position
from prefpipe.world.prompts import prompt_id
from tests.config.test_model_refs import model_folder


def setup(tmp_path, n_prompts: int, **sections) -> object:
    model_folder(tmp_path / "data" / "inputs" / "my-model")
    rows = [{"prompt": f"Question number {i}?", "category": "general"} for i in range(n_prompts)]
    (tmp_path / "data" / "inputs" / "prompts.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
    raw = {"model": {"policy": "data/inputs/my-model"}, "data": {"prompts": "data/inputs/prompts.jsonl"},
           "label": {"critic": {"judge": "http", "http": {"model": "judge"}}}}
    for section, values in sections.items():
        raw[section] = {**raw.get(section, {}), **values}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_counts_match_the_hashes_computed_one_by_one():
    ids = [f"id-{i}" for i in range(300)]
    counts = count_splits(ids, 0.2, 0.15, seed=4)
    heldout = [p for p in ids if split_position(4, SplitPurpose.HELDOUT, p) < 0.2]
    train = [p for p in ids if p not in heldout]
    val = [p for p in train if split_position(4, SplitPurpose.REWARD_VALIDATION, p) < 0.15]
    assert (counts.heldout, counts.train, counts.reward_val) == (len(heldout), len(train), len(val))
    assert counts.heldout_needs == min(split_position(4, SplitPurpose.HELDOUT, p) for p in ids)


def test_the_issues_150_prompts_with_default_fractions_fill_every_split(tmp_path):
    counts = check_splits(load_params(path := setup(tmp_path, 150)), path)
    assert counts.prompts == 150 and counts.heldout > 0 and counts.reward_val > 0
    assert counts.heldout + counts.train == 150


def test_no_heldout_prompt_names_data_heldout_fraction_and_the_value_that_would_do(tmp_path):
    path = setup(tmp_path, 3, data={"heldout_fraction": 0.01})
    ids = [prompt_id(f"Question number {i}?") for i in range(3)]
    needs = min(split_position(0, SplitPurpose.HELDOUT, p) for p in ids)
    assert needs > 0.01  # the premise: none of these three falls below 0.01
    with pytest.raises(ParamsError, match=r"data\.heldout_fraction: 0\.01 holds out none of your 3 "
                                          rf"prompts .*raise it above {needs:.3f}"):
        check_splits(load_params(path), path)


def test_no_training_prompt_names_data_heldout_fraction(tmp_path):
    path = setup(tmp_path, 3, data={"heldout_fraction": 0.999999})
    with pytest.raises(ParamsError, match=r"data\.heldout_fraction: 0\.999999 leaves none"):
        check_splits(load_params(path), path)


def test_no_reward_validation_prompt_names_reward_val_fraction(tmp_path):
    path = setup(tmp_path, 40, reward={"val_fraction": 0.001})
    with pytest.raises(ParamsError, match=r"reward\.val_fraction: 0\.001 puts none of the \d+ "
                                          r"training prompts .*raise it above 0\.\d{3}"):
        check_splits(load_params(path), path)


def test_few_heldout_prompts_warn(tmp_path, caplog):
    path = setup(tmp_path, 40)
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        counts = check_splits(load_params(path), path)
    assert counts.heldout < 20
    assert f"holds out {counts.heldout} of your 40 prompts" in caplog.text


def test_the_embedded_world_is_not_counted(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 0}))
    assert check_splits(load_params(path), path) is None
