"""params.yaml loading: every problem names the file and the dotted key."""
from __future__ import annotations

from pathlib import Path

import pytest

from prefpipe.config import EMBEDDED, Params, ParamsError, load_params
from prefpipe.config.loader import build
from prefpipe.config.schema import DPOParams, ModelParams

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str, check_paths: bool = False) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ParamsError) as err:
        load_params(path, check_paths=check_paths)
    message = str(err.value)
    assert str(path) in message  # every message names the file
    return message


def test_repo_params_yaml_loads_with_path_checks(monkeypatch):
    monkeypatch.chdir(REPO)
    params = load_params(REPO / "params.yaml", check_paths=True)
    assert isinstance(params, Params)
    assert params.embedded_data and params.embedded_model
    assert params.data.prompts == EMBEDDED
    assert params.model.n_embd % params.model.n_head == 0
    assert params.label.routing["default"] in ("simulated", "verifier", "critic", "human")


def test_empty_file_gives_all_defaults(tmp_path):
    params = load_params(write(tmp_path, ""), check_paths=False)
    assert params == Params()


def test_values_are_read_into_nested_sections(tmp_path):
    params = load_params(write(tmp_path, "seed: 7\nsft:\n  optim: {batch_size: 5, epochs: 2}\n"
                                         "generate:\n  sampling: {top_k: 3}\n"), check_paths=False)
    assert params.seed == 7
    assert params.sft.optim.batch_size == 5
    assert params.sft.optim.epochs == 2.0 and isinstance(params.sft.optim.epochs, float)
    assert params.generate.sampling.top_k == 3
    # untouched keys keep their defaults
    assert params.generate.sampling.temperature == 1.0


def test_unknown_nested_key_names_dotted_key(tmp_path):
    message = load_error(tmp_path, "sft:\n  optim: {lrr: 0.1}\n")
    assert "'sft.optim.lrr'" in message
    assert "lr" in message.split("known keys here:")[1]


def test_unknown_top_level_key_is_named(tmp_path):
    message = load_error(tmp_path, "sedd: 1\n")
    assert "'sedd'" in message


def test_wrong_type_names_key(tmp_path):
    message = load_error(tmp_path, "generate:\n  prompts: abc\n")
    assert "'generate.prompts'" in message
    assert "integer" in message and "'abc'" in message


def test_bool_is_not_an_integer(tmp_path):
    message = load_error(tmp_path, "seed: true\n")
    assert "'seed'" in message


def test_non_number_for_float_names_key(tmp_path):
    message = load_error(tmp_path, "label:\n  simulated: {noise: lots}\n")
    assert "'label.simulated.noise'" in message and "number" in message


@pytest.mark.parametrize("text", ["1e-3", "'1e-3'", "1.0e-3"])
def test_exponent_string_is_accepted_as_float(tmp_path, text):
    # YAML 1.1 (PyYAML) reads a bare 1e-3 as the string '1e-3'.
    params = load_params(write(tmp_path, f"sft:\n  optim: {{lr: {text}}}\n"), check_paths=False)
    assert params.sft.optim.lr == pytest.approx(1e-3)
    assert isinstance(params.sft.optim.lr, float)


def test_literal_value_outside_choices_names_key(tmp_path):
    message = load_error(tmp_path, "policy: {algorithm: reinforce}\n")
    assert "'policy.algorithm'" in message and "reinforce" in message


def test_section_must_be_a_mapping(tmp_path):
    message = load_error(tmp_path, "sft: [1, 2]\n")
    assert "sft must be a mapping" in message


def test_top_level_must_be_a_mapping(tmp_path):
    message = load_error(tmp_path, "- 1\n- 2\n")
    assert "mapping" in message


def test_invalid_yaml_is_reported(tmp_path):
    message = load_error(tmp_path, "seed: [1, 2\n")
    assert "not valid YAML" in message


def test_missing_params_file(tmp_path):
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "nope.yaml")


def test_routing_to_unknown_labeler_names_key(tmp_path):
    message = load_error(tmp_path, "label:\n  routing: {default: simulated, code: oracle}\n")
    assert "label.routing.code" in message and "'oracle'" in message


def test_routing_without_default_is_rejected(tmp_path):
    message = load_error(tmp_path, "label:\n  routing: {code: verifier}\n")
    assert "label.routing" in message and "default" in message


def test_routing_value_type_names_key(tmp_path):
    message = load_error(tmp_path, "label:\n  routing: {default: 3}\n")
    assert "'label.routing.default'" in message


def test_n_embd_not_divisible_by_n_head(tmp_path):
    message = load_error(tmp_path, "model: {n_embd: 10, n_head: 3}\n")
    assert "model.n_embd" in message and "n_head" in message


@pytest.mark.parametrize("text,key", [
    ("data: {heldout_fraction: 1.0}\n", "data.heldout_fraction"),
    ("world: {p_filler: 1.5}\n", "world.p_filler"),
    ("reward:\n  optim: {epochs: 0}\n", "reward.optim.epochs"),
    ("evaluate:\n  sampling: {top_p: 0}\n", "evaluate.sampling.top_p"),
    ("generate: {candidates_per_prompt: 3, pairs_per_prompt: 4}\n", "generate.pairs_per_prompt"),
    ("runtime: {threads: 0}\n", "runtime.threads"),
    ("orchestration: {wait_for_workspace_s: -1}\n", "orchestration.wait_for_workspace_s"),
])
def test_validate_problems_name_the_key(tmp_path, text, key):
    assert key in load_error(tmp_path, text)


@pytest.mark.parametrize("beta", [0, -0.5])
def test_dpo_beta_must_be_positive(tmp_path, beta):
    message = load_error(tmp_path, f"policy:\n  dpo: {{beta: {beta}}}\n")
    assert "dpo.beta" in message and "> 0" in message


@pytest.mark.parametrize("text,key", [
    ("policy:\n  dpo: {beta: 0}\n", "'policy.dpo.beta'"),
    ("policy:\n  dpo: {label_smoothing: 0.5}\n", "'policy.dpo.label_smoothing'"),
])
def test_dpo_problems_name_the_real_dotted_key(tmp_path, text, key):
    message = load_error(tmp_path, text)
    assert key.strip("'") in message
    assert "dpo.dpo" not in message


def test_validate_runs_on_directly_built_sections():
    with pytest.raises(ParamsError, match="must be divisible"):
        build(ModelParams, {"n_embd": 9, "n_head": 2}, "model", "x.yaml")
    assert build(DPOParams, {"beta": 0.5}, "policy.dpo", "x.yaml").beta == 0.5


def test_missing_prompts_file_names_data_prompts(tmp_path):
    missing = tmp_path / "inputs" / "nope.jsonl"
    message = load_error(tmp_path, f"data: {{prompts: '{missing}'}}\n", check_paths=True)
    assert "data.prompts" in message and str(missing) in message


def test_existing_prompts_file_passes_path_check(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    params = load_params(write(tmp_path, f"data: {{prompts: '{prompts}'}}\n"), check_paths=True)
    assert params.data.prompts == str(prompts) and not params.embedded_data


def test_path_check_can_be_skipped(tmp_path):
    params = load_params(write(tmp_path, "data: {prompts: nope.jsonl}\n"), check_paths=False)
    assert params.data.prompts == "nope.jsonl"


def test_missing_local_model_folder_names_model_policy(tmp_path):
    message = load_error(tmp_path, f"model: {{policy: '{tmp_path / 'no_model'}'}}\n",
                         check_paths=True)
    assert "model.policy" in message


def test_hub_id_model_is_not_path_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = load_params(write(tmp_path, "model: {policy: org/some-model}\n"), check_paths=True)
    assert params.model.policy == "org/some-model" and not params.embedded_model


def test_human_routing_needs_enough_annotators(tmp_path):
    message = load_error(tmp_path, "label:\n  routing: {default: critic, harmful: human}\n"
                                   "  human: {annotators: [ann1], overlap: 2}\n")
    assert "human.annotators" in message and "overlap" in message


def test_escalation_target_names_key(tmp_path):
    message = load_error(tmp_path, "label:\n  escalate: {to: oracle}\n")
    assert "escalate.to" in message and "oracle" in message


def test_simulated_overlap_cannot_exceed_pool(tmp_path):
    message = load_error(tmp_path, "label:\n  simulated: {annotators: 2, overlap: 3}\n")
    assert "simulated.overlap" in message
