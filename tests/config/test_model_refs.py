"""Model keys are checked before any work (issue 15): model.policy, reward.model and
label.critic.local.model must be a Hugging Face folder (config.json, weights, a tokenizer) or,
where a hub is allowed, a hub id 'org/name'; model.n_positions fits the policy's positions."""
from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub.constants
import pytest

from prefpipe.config import ParamsError, load_params


def model_folder(path: Path, config: dict | None = None, weights: tuple[str, ...] = ("model.safetensors",),
                 tokenizer: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config or {"model_type": "gpt2", "n_positions": 256}))
    for name in weights:
        (path / name).write_bytes(b"\0")
    if tokenizer:
        (path / "tokenizer.json").write_text("{}")
    return path


def load(tmp_path: Path, text: str):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return load_params(path)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ParamsError) as err:
        load(tmp_path, text)
    return str(err.value)


def test_a_missing_relative_model_folder_is_no_hub_id(tmp_path, monkeypatch):
    # The case: data/inputs/my-model was passed to the hub and failed in generate.
    (tmp_path / "data" / "inputs").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    message = error(tmp_path, "model: {policy: data/inputs/my-model}\n")
    assert "model.policy: no model folder 'data/inputs/my-model'" in message
    assert str(tmp_path / "data" / "inputs" / "my-model") in message and "hub id 'org/name'" in message


@pytest.mark.parametrize("ref", ["my-model", "inputs/my-model", "./org/name", "a/b/c"])
def test_refs_that_are_no_folder_and_no_hub_id_fail(tmp_path, ref):
    (tmp_path / "inputs").mkdir()
    assert "model.policy: no model folder" in error(tmp_path, f"model: {{policy: '{ref}'}}\n")


def test_an_existing_folder_passes_and_resolves_against_the_params_folder(tmp_path, monkeypatch):
    model_folder(tmp_path / "models" / "mine")
    monkeypatch.chdir(tmp_path.parent)  # not where the params file is
    params = load(tmp_path, "model: {policy: models/mine}\n")
    assert params.model.policy == "models/mine"


SHARDS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")


@pytest.mark.parametrize("weights", [("model.safetensors",), ("pytorch_model.bin",), SHARDS])
def test_weights_may_be_safetensors_bin_or_sharded(tmp_path, weights):
    model_folder(tmp_path / "m", weights=weights)
    assert load(tmp_path, "model: {policy: m}\n").model.policy == "m"


@pytest.mark.parametrize("setup, expected", [
    (lambda p: model_folder(p, weights=()), "has no weights (*.safetensors or *.bin"),
    (lambda p: model_folder(p, weights=("training_args.bin",)), "has no weights"),
    (lambda p: model_folder(p, tokenizer=False), "has no tokenizer"),
    (lambda p: (model_folder(p), (p / "config.json").unlink()), "has no config.json"),
    (lambda p: (p.parent.mkdir(exist_ok=True), p.write_text("x")), "is a file"),
    (lambda p: (model_folder(p, weights=("model-00001-of-00002.safetensors",)),
                (p / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
                    "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))),
     "lists model-00002-of-00002.safetensors, which is missing"),
], ids=["no-weights", "only-training-args", "no-tokenizer", "no-config", "a-file", "missing-shard"])
def test_an_incomplete_model_folder_names_model_policy_and_what_is_missing(tmp_path, setup, expected):
    setup(tmp_path / "m")
    message = error(tmp_path, "model: {policy: m}\n")
    assert "model.policy: " in message and expected in message


def test_a_hub_id_is_not_path_checked(tmp_path):
    assert load(tmp_path, "model: {policy: openai-community/gpt2}\n").model.policy == "openai-community/gpt2"


def test_reward_model_is_checked_like_the_policy(tmp_path):
    assert "reward.model: no model folder 'rm'" in error(tmp_path, "reward: {model: rm}\n")


def test_the_local_judge_needs_a_local_folder_not_a_hub_id(tmp_path):
    message = error(tmp_path, "label:\n  critic: {judge: local, local: {model: org/judge}}\n")
    assert "label.critic.local.model: no model folder 'org/judge'" in message
    assert "hub id" not in message
    model_folder(tmp_path / "judge")
    assert load(tmp_path, "label:\n  critic: {judge: local, local: {model: judge}}\n")
    # another judge never reads local.model
    assert load(tmp_path, "label:\n  critic: {judge: http, http: {model: m}, local: {model: nope}}\n")


@pytest.mark.parametrize("config", [{"n_positions": 64}, {"max_position_embeddings": 64}, {"n_ctx": 64}])
def test_n_positions_beyond_the_policys_positions_names_the_key(tmp_path, config):
    model_folder(tmp_path / "m", config={"model_type": "x", **config})
    message = error(tmp_path, "model: {policy: m}\n")  # model.n_positions defaults to 128
    assert "model.n_positions: 128 tokens is more than model.policy 'm' reads" in message
    assert "set model.n_positions to 64 or less" in message
    assert load(tmp_path, "model: {policy: m, n_positions: 64}\n").model.n_positions == 64


def test_a_policy_without_declared_positions_passes(tmp_path):
    model_folder(tmp_path / "m", config={"model_type": "x"})
    assert load(tmp_path, "model: {policy: m}\n").model.policy == "m"


@pytest.mark.parametrize("text, key", [
    ("generate:\n  sampling: {max_new_tokens: 64}\n", "generate.sampling.max_new_tokens: 64 new tokens"),
    ("evaluate:\n  sampling: {max_new_tokens: 100}\n", "evaluate.sampling.max_new_tokens: 100"),
    ("policy:\n  algorithm: ppo\n  ppo:\n    sampling: {max_new_tokens: 64}\n",
     "policy.ppo.sampling.max_new_tokens: 64"),
])
def test_new_tokens_must_leave_room_for_a_prompt_in_the_policys_positions(tmp_path, text, key):
    model_folder(tmp_path / "m", config={"max_position_embeddings": 64})
    message = error(tmp_path, "model: {policy: m, n_positions: 64}\n" + text)
    assert key in message and "max_position_embeddings: 64" in message and "set it below 64" in message


def test_an_unused_samplers_new_tokens_are_not_checked(tmp_path):
    model_folder(tmp_path / "m", config={"max_position_embeddings": 64})
    params = load(tmp_path, "model: {policy: m, n_positions: 64}\n"
                            "policy:\n  ppo:\n    sampling: {max_new_tokens: 64}\n")  # dpo runs
    assert params.policy.algorithm == "dpo"


def test_with_the_hub_switched_off_a_hub_id_must_be_in_the_local_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    message = error(tmp_path, "model: {policy: org/not-cached}\n")
    assert "model.policy: 'org/not-cached' looks like a hub id" in message
    assert "local Hugging Face cache" in message
    # cached (the layout huggingface_hub writes): passes
    snapshot = tmp_path / "hub" / "models--org--cached" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--org--cached" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--cached" / "refs" / "main").write_text("0" * 40)
    assert load(tmp_path, "model: {policy: org/cached}\n").model.policy == "org/cached"


def untracked_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelname == "WARNING" and "dvc repro" in r.getMessage()]


def test_a_model_outside_data_inputs_warns_that_dvc_cannot_see_it_change(tmp_path, caplog):
    model_folder(tmp_path / "elsewhere" / "m")
    model_folder(tmp_path / "data" / "inputs" / "rm")
    load(tmp_path, "model: {policy: elsewhere/m}\nreward: {model: data/inputs/rm}\n")
    warnings = untracked_warnings(caplog)
    assert len(warnings) == 1  # the policy; the reward model lies under data/inputs/
    assert "model.policy: 'elsewhere/m' is outside data/inputs/" in warnings[0]
    assert "put the model folder under data/inputs/" in warnings[0]


def test_models_under_data_inputs_and_unused_ones_give_no_warning(tmp_path, caplog):
    model_folder(tmp_path / "data" / "inputs" / "m")
    model_folder(tmp_path / "judge")  # outside, but the judge is the rule judge: not used
    load(tmp_path, f"model: {{policy: {tmp_path / 'data' / 'inputs' / 'm'}}}\n"
                   "label: {critic: {local: {model: judge}}}\n")
    assert untracked_warnings(caplog) == []


def test_a_hub_id_warns_that_upstream_changes_are_not_tracked(tmp_path, caplog):
    load(tmp_path, "model: {policy: org/name}\n")
    (warning,) = untracked_warnings(caplog)
    assert "model.policy: hub id 'org/name'" in warning
    assert "hf download org/name --local-dir data/inputs/name" in warning
