"""Every config in infra/accelerate/ is read by accelerate itself: its config loader (unknown top-level
keys fail there), its launcher (each nested key must be a `accelerate launch` option, and the launcher
turns them into the variables the processes read) and the FSDP / DeepSpeed plugins the processes
build from those variables (no deepspeed install needed for the plugin). The settings prefpipe
relies on are checked on the plugins, where they take effect.

tests/train/test_distributed_fsdp.py runs fsdp.yaml and deepspeed_zero3.yaml for real."""
from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env
from torch.distributed.fsdp import CPUOffloadPolicy

from prefpipe.config.optim import OptimParams

CONFIGS = Path(__file__).resolve().parents[2] / "infra" / "accelerate"
EXPECTED = {"single_gpu.yaml": (DistributedType.NO, 1), "ddp.yaml": (DistributedType.MULTI_GPU, 2),
            "fsdp.yaml": (DistributedType.FSDP, 2), "deepspeed_zero3.yaml": (DistributedType.DEEPSPEED, 2)}


def launcher_env(config: Path) -> dict[str, str]:
    """The variables `accelerate launch --config_file CONFIG` gives each process (what it adds)."""
    args = launch_command_parser().parse_args(["--config_file", str(config), "train.py"])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:  # as accelerate's launch_command does before the DeepSpeed launcher
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    return {k: v for k, v in env.items() if os.environ.get(k) != v}


def test_the_folder_holds_the_configs_checked_here():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accelerate_loads_each_config(name):
    config = load_config_from_file(str(CONFIGS / name))
    assert isinstance(config, ClusterConfig)
    assert (config.distributed_type, config.num_processes) == EXPECTED[name]
    assert config.num_machines == 1 and config.mixed_precision == "bf16"


@pytest.mark.parametrize("name,section", [("fsdp.yaml", "fsdp_config"),
                                          ("deepspeed_zero3.yaml", "deepspeed_config")])
def test_every_nested_key_is_a_launch_option(name, section):
    """The launcher copies nested keys onto its arguments unchecked: a misspelt one is dropped."""
    options = {action.dest for action in launch_command_parser()._actions}
    keys = getattr(load_config_from_file(str(CONFIGS / name)), section)
    assert keys
    assert not sorted(set(keys) - options), f"{name}: {section} keys accelerate launch does not know"


def test_fsdp_config_is_fsdp2_with_whole_weights_on_save():
    env = launcher_env(CONFIGS / "fsdp.yaml")
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    with mock.patch.dict(os.environ, env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2  # the only version prefpipe runs on a CPU-only machine
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"
    assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"
    assert plugin.reshard_after_forward is True and not isinstance(plugin.cpu_offload, CPUOffloadPolicy)


def test_deepspeed_config_is_zero3_as_prefpipe_needs_it():
    env = launcher_env(CONFIGS / "deepspeed_zero3.yaml")
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    with mock.patch.dict(os.environ, env):
        plugin = DeepSpeedPlugin()
    zero = plugin.deepspeed_config["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["offload_optimizer"]["device"] == zero["offload_param"]["device"] == "none"
    # Runtime.full_state_dict gathers the whole weights through this
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    # frozen models (DPO reference, PPO reward model) must load whole: Runtime.load_whole_models
    assert plugin.zero3_init_flag is False
    # DeepSpeed clips inside its step; Runtime.step refuses a value other than the loop's
    assert plugin.deepspeed_config["gradient_clipping"] == OptimParams().max_grad_norm
    assert plugin.deepspeed_config["gradient_accumulation_steps"] == 1
