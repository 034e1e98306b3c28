"""Params against your own prompts (issue 15): labelers and algorithms that need the embedded
world fail when params are loaded, naming the key and what to use instead, not at `label`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from prefpipe.config import ParamsError, load_params
from prefpipe.data.preflight import check_against_data
from tests.config.test_model_refs import model_folder

CATEGORIES = ["general", "math", "safety"]  # the prompt file; none is routed by default
HTTP_JUDGE = {"judge": "http", "http": {"model": "judge"}}


def user_setup(tmp_path: Path, params: dict, categories=CATEGORIES) -> Path:
    """A params file with a user's model folder and prompt file, plus `params` (merged by section)."""
    model_folder(tmp_path / "data" / "inputs" / "my-model")
    rows = [{"prompt": f"Question {i}?", "category": categories[i % len(categories)]} for i in range(30)]
    (tmp_path / "data" / "inputs" / "prompts.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
    raw = {"model": {"policy": "data/inputs/my-model"}, "data": {"prompts": "data/inputs/prompts.jsonl"},
           "label": {"critic": HTTP_JUDGE}}
    for section, values in params.items():
        raw[section] = {**raw.get(section, {}), **values}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def check(path: Path) -> None:
    check_against_data(load_params(path), path)


def problem(tmp_path: Path, params: dict, categories=CATEGORIES) -> str:
    path = user_setup(tmp_path, params, categories)
    with pytest.raises(ParamsError) as err:
        check(path)
    assert str(path) in str(err.value)
    return str(err.value)


def test_default_routing_passes_when_the_prompts_have_none_of_its_categories(tmp_path):
    check(user_setup(tmp_path, {}))  # arithmetic/code -> verifier, harmful -> simulated: unused


def test_a_category_of_the_prompts_routed_to_the_verifier_names_its_routing_key(tmp_path):
    message = problem(tmp_path, {"label": {"routing": {"math": "verifier", "default": "critic"},
                                           "critic": HTTP_JUDGE}})
    assert "label.routing.math: 'verifier' would label your prompts (your categories ['math'])" in message
    assert "reference answers and tests" in message and "use 'critic' (with label.critic.judge" in message


def test_a_default_routed_category_the_default_params_send_to_the_verifier(tmp_path):
    # 'code' in your own prompts meets the default routing's code -> verifier
    message = problem(tmp_path, {}, categories=["general", "code"])
    assert "label.routing.code: 'verifier'" in message


def test_default_routed_to_simulated_names_the_default_key(tmp_path):
    message = problem(tmp_path, {"label": {"routing": {"default": "simulated"}, "critic": HTTP_JUDGE}})
    assert "label.routing.default: 'simulated' would label your prompts (your categories " \
           "['general', 'math', 'safety'])" in message and "gold answers" in message


def test_escalation_to_simulated_fails_only_when_it_would_escalate(tmp_path):
    message = problem(tmp_path, {"label": {"critic": HTTP_JUDGE, "escalate": {
        "to": "simulated", "critic_confidence_below": 0.6}}})
    assert "label.escalate.to: 'simulated'" in message
    check(user_setup(tmp_path, {"label": {"critic": HTTP_JUDGE, "escalate": {"to": "simulated"}}}))


def test_human_missing_to_simulated_names_its_key(tmp_path):
    message = problem(tmp_path, {"label": {
        "routing": {"default": "human"}, "critic": HTTP_JUDGE,
        "human": {"annotators": ["a1", "a2"], "missing": "simulated"}}})
    assert "label.human.missing: 'simulated'" in message


def test_the_rule_judge_fails_when_the_critic_would_judge_your_prompts(tmp_path):
    message = problem(tmp_path, {"label": {"critic": {"judge": "rule"}}})
    assert "label.critic.judge: 'rule' would judge your prompts (through label.routing.default)" in message
    assert "'http'" in message and "'local'" in message
    # no critic in use: the rule judge is never asked
    check(user_setup(tmp_path, {"label": {"critic": {"judge": "rule"}, "routing": {"default": "human"},
                                          "human": {"annotators": ["a1", "a2"], "missing": "skip"}}}))


def test_grpo_needs_verifier_rewards(tmp_path):
    message = problem(tmp_path, {"policy": {"algorithm": "grpo"}})
    assert "policy.algorithm: 'grpo' trains on verifier rewards" in message
    assert "use 'dpo' or 'ppo'" in message


def test_the_embedded_model_needs_the_embedded_prompts(tmp_path):
    message = problem(tmp_path, {"model": {"policy": "embedded"}})
    assert "model.policy: 'embedded'" in message and "data.prompts 'embedded'" in message


def test_the_embedded_world_is_not_checked(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("policy: {algorithm: grpo}\nlabel:\n  routing: {default: simulated}\n")
    check(path)
