"""The trainer knobs (prompt format, data order, optimizer, schedule, dropout): typed, defaulting
to today's behaviour, and every bad value names its dotted key."""
from __future__ import annotations

from pathlib import Path

import pytest

from prefpipe.config import Params, ParamsError, load_params

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, text: str) -> Params:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return load_params(path, check_paths=False)


def test_defaults_are_todays_behaviour():
    params = Params()
    assert params.model.prompt_format == "auto"
    for optim in (params.sft.optim, params.reward.optim, params.policy.dpo.optim):
        assert optim.shuffle is True
    for optim in (params.sft.optim, params.reward.optim, params.policy.dpo.optim,
                  params.policy.ppo.optim, params.policy.grpo.optim):
        assert (optim.optimizer, optim.fused, optim.momentum) == ("adamw", None, 0.0)
        assert (optim.schedule, optim.min_lr_ratio) == ("cosine", 0.1)
    assert params.sft.dropout is None
    assert params.policy.dpo.dropout == 0.0  # DPO has always trained with dropout off
    assert params.reward.dropout == 0.0  # off, as TRL's RewardTrainer (issue 14: higher gold accuracy)


def test_repo_params_yaml_spells_out_the_defaults():
    params = load_params(REPO / "params.yaml", check_paths=False)
    defaults = Params()
    assert params.model == defaults.model and params.sft == defaults.sft
    assert params.reward == defaults.reward and params.policy == defaults.policy


def test_knobs_are_read(tmp_path):
    params = load(tmp_path, "model: {prompt_format: raw}\n"
                            "sft:\n  dropout: 0.2\n  optim: {shuffle: false, optimizer: sgd, momentum: 0.9}\n"
                            "reward:\n  dropout: 0.0\n  optim: {fused: true, schedule: linear}\n"
                            "policy:\n  dpo: {dropout: null}\n  ppo:\n    optim: {schedule: constant}\n")
    assert params.model.prompt_format == "raw"
    assert params.sft.dropout == 0.2 and params.sft.optim.shuffle is False
    assert (params.sft.optim.optimizer, params.sft.optim.momentum) == ("sgd", 0.9)
    assert params.reward.dropout == 0.0 and params.reward.optim.fused is True
    assert params.reward.optim.schedule == "linear"
    assert params.policy.dpo.dropout is None and params.policy.ppo.optim.schedule == "constant"


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])
def test_runtime_precision_takes_auto(tmp_path, precision):
    assert load(tmp_path, f"runtime: {{precision: {precision}}}\n").runtime.precision == precision


@pytest.mark.parametrize("text, key", [
    ("runtime: {precision: fp16}\n", "'runtime.precision' must be one of"),
    ("model: {prompt_format: markdown}\n", "'model.prompt_format' must be one of"),
    ("sft:\n  optim: {shuffle: sometimes}\n", "'sft.optim.shuffle' must be true or false"),
    ("reward:\n  optim: {optimizer: adam}\n", "'reward.optim.optimizer' must be one of"),
    ("policy:\n  dpo:\n    optim: {schedule: step}\n", "'policy.dpo.optim.schedule' must be one of"),
    ("policy:\n  grpo:\n    optim: {fused: maybe}\n", "'policy.grpo.optim.fused' must be true or false"),
    ("sft:\n  optim: {optimizer: sgd, fused: true}\n", "sft.optim.fused applies to optimizer adamw only"),
    ("reward:\n  optim: {momentum: 0.9}\n", "reward.optim.momentum applies to optimizer sgd only"),
    ("sft:\n  optim: {optimizer: sgd, momentum: -1}\n", "sft.optim.momentum must be >= 0"),
    ("policy:\n  ppo:\n    optim: {min_lr_ratio: 1.5}\n", "policy.ppo.optim.min_lr_ratio must be in [0, 1]"),
    ("reward: {dropout: 1.0}\n", "reward.dropout must be null or in [0, 1)"),
    ("sft: {dropout: -0.1}\n", "sft.dropout must be null or in [0, 1)"),
    ("policy:\n  dpo: {dropout: 2}\n", "policy.dpo.dropout must be null or in [0, 1)"),
    ("sft: {dropout: lots}\n", "'sft.dropout' must be a number"),
])
def test_bad_values_name_the_dotted_key(tmp_path, text, key):
    with pytest.raises(ParamsError) as err:
        load(tmp_path, text)
    assert key in str(err.value)
