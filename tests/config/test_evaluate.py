"""`evaluate` params (prefpipe/config/evaluate.py): the KL budget and the gates are typed, params.yaml
spells out the defaults, and every bad gate names its dotted key `evaluate.gates.<metric>`."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from prefpipe.config import Params, ParamsError, load_params
from prefpipe.config.evaluate import DEFAULT_GATES, EvaluateParams, GateBound

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, text: str) -> Params:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return load_params(path, check_paths=False)


def test_defaults_and_every_knob_documents_itself():
    params = EvaluateParams()
    assert (params.prompts, params.kl_budget, params.enforce_gates) == (600, 5.0, True)
    assert params.gates == DEFAULT_GATES and params.gates is not DEFAULT_GATES
    assert params.gates["win_rate_low"] == GateBound(min=0.5)
    sections = ("sampling", "signals", "judge", "pass_at_k")  # each documents its own knobs
    assert all(f.metadata.get("help") for f in dataclasses.fields(EvaluateParams) if f.name not in sections)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.kl_budget = 1.0  # type: ignore[misc]


def test_the_old_import_path_still_works():
    from prefpipe.config.schema import EvaluateParams as FromSchema
    from prefpipe.config.schema import SamplingParams

    assert FromSchema is EvaluateParams and Params().evaluate.sampling == SamplingParams()


def test_repo_params_yaml_spells_out_the_defaults():
    assert load_params(REPO / "params.yaml", check_paths=False).evaluate == EvaluateParams()


def test_gates_are_read_as_typed_bounds_in_their_order(tmp_path):
    params = load(tmp_path, "evaluate:\n  kl_budget: 12\n  enforce_gates: false\n  gates:\n"
                            "    rm_win_rate: {min: 0.6}\n    policy_distinct_2: {min: 1e-2, max: 0.9}\n"
                            "    accuracy_drop: {max: 0.05}\n")
    evaluate = params.evaluate
    assert evaluate.kl_budget == 12.0 and isinstance(evaluate.kl_budget, float)
    assert evaluate.enforce_gates is False
    assert list(evaluate.gates) == ["rm_win_rate", "policy_distinct_2", "accuracy_drop"]
    assert evaluate.gates["policy_distinct_2"] == GateBound(min=0.01, max=0.9)
    assert evaluate.gates["rm_win_rate"].max is None
    assert load(tmp_path, "evaluate:\n  gates: {}\n").evaluate.gates == {}  # no gates but the KL budget


@pytest.mark.parametrize(("text", "expected"), [
    ("evaluate:\n  gates:\n    win_rate_low: {min: 0.9, max: 0.1}\n",
     "evaluate.gates.win_rate_low.min (0.9) must be <= max (0.1)"),
    ("evaluate:\n  gates:\n    win_rate_low: {}\n",
     "evaluate.gates.win_rate_low.min or max: give at least one"),
    ("evaluate:\n  gates:\n    kl_nats: {maximum: 3}\n", "unknown key 'evaluate.gates.kl_nats.maximum'"),
    ("evaluate:\n  gates:\n    kl_nats: {max: lots}\n", "'evaluate.gates.kl_nats.max' must be a number"),
    ("evaluate:\n  gates:\n    kl_nats: 3\n", "evaluate.gates.kl_nats must be a mapping"),
    ("evaluate:\n  gates: [kl_nats]\n", "'evaluate.gates' must be a mapping"),
    ("evaluate:\n  kl_budget: 0\n", "evaluate.kl_budget must be > 0 nats, got 0.0"),
    ("evaluate:\n  enforce_gates: sometimes\n", "'evaluate.enforce_gates' must be true or false"),
])
def test_a_bad_gate_names_its_key(tmp_path, text, expected):
    with pytest.raises(ParamsError) as err:
        load(tmp_path, text)
    assert expected in str(err.value) and str(tmp_path / "params.yaml") in str(err.value)


def test_a_good_gate_loads_quietly(tmp_path):
    """The quiet side of the errors above: one bound, or both in order, are fine."""
    text = "evaluate:\n  gates:\n    win_rate_low: {min: 0.1, max: 0.9}\n    kl_nats: {max: 3}\n"
    assert load(tmp_path, text).evaluate.gates["kl_nats"] == GateBound(max=3.0)
