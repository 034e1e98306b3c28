"""Params against your own prompts (issue 15): labelers and algorithms that need the embedded
world fail when params are loaded, naming the key and what to use instead, not at `label`; the
verifier and GRPO need your prompts to carry reference answers or tests."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from prefpipe.config import ParamsError, load_params
from prefpipe.data.preflight import check_against_data
from tests.config.test_model_refs import model_folder

CATEGORIES = ["general", "math", "safety"]  # the prompt file; none is routed by default
HTTP_JUDGE = {"judge": "http", "http": {"model": "judge"}}


def user_setup(tmp_path: Path, params: dict, categories=CATEGORIES, extra: dict | None = None) -> Path:
    """A params file with a user's model folder and prompt file, plus `params` (merged by section);
    `extra` maps row numbers to more columns (answers, tests). Row i has category i % len(categories)."""
    model_folder(tmp_path / "data" / "inputs" / "my-model")
    rows = [{"prompt": f"Question {i}?", "category": categories[i % len(categories)],
             **(extra or {}).get(i, {})} for i in range(30)]
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


def problem(tmp_path: Path, params: dict, categories=CATEGORIES, extra: dict | None = None) -> str:
    path = user_setup(tmp_path, params, categories, extra)
    with pytest.raises(ParamsError) as err:
        check(path)
    assert str(path) in str(err.value)
    return str(err.value)


def test_default_routing_passes_when_the_prompts_have_none_of_its_categories(tmp_path):
    check(user_setup(tmp_path, {}))  # arithmetic/code -> verifier, harmful -> simulated: unused


MATH_TO_VERIFIER = {"label": {"routing": {"math": "verifier", "default": "critic"}, "critic": HTTP_JUDGE}}


def test_a_category_routed_to_the_verifier_without_answers_or_tests_names_key_and_columns(tmp_path):
    message = problem(tmp_path, MATH_TO_VERIFIER, extra={0: {"answer": "1"}})  # row 0 is 'general'
    assert ("label.routing.math: 'verifier' would label your prompts of category 'math', but none of its "
            "10 carries a reference answer (column data.answer_column: 'answer') or tests (column "
            "data.tests_column: 'tests')") in message
    assert "add them, or use 'critic' (with label.critic.judge" in message


def test_a_category_with_some_answers_may_go_to_the_verifier_and_the_rest_are_counted(tmp_path, caplog):
    # rows 1, 4, 7, ..., 28 are 'math' (10 of them): two carry answers, one tests
    extra = {1: {"answer": "42"}, 4: {"answer": 0.5}, 7: {"tests": ["assert f() == 1"]}}
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        check(user_setup(tmp_path, MATH_TO_VERIFIER, extra=extra))
    assert ("label.routing.math: 7 of the 10 prompts of category 'math' carry no reference answer or "
            "tests; the verifier leaves their pairs to label.verifier.undecided ('critic')") in caplog.text


def test_a_category_whose_prompts_all_carry_answers_passes_without_a_warning(tmp_path, caplog):
    extra = {i: {"answer": str(i)} for i in range(1, 30, 3)}
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        check(user_setup(tmp_path, MATH_TO_VERIFIER, extra=extra))
    assert "carry no reference answer" not in caplog.text


def test_the_columns_the_params_name_are_the_ones_counted(tmp_path):
    extra = {i: {"final": str(i)} for i in range(1, 30, 3)}
    data = {"prompts": "data/inputs/prompts.jsonl", "answer_column": "final"}
    check(user_setup(tmp_path, {**MATH_TO_VERIFIER, "data": data}, extra=extra))
    message = problem(tmp_path, MATH_TO_VERIFIER, extra=extra)  # the default column 'answer': none
    assert "data.answer_column: 'answer'" in message


def test_the_simulated_labeler_stays_embedded_only_even_with_answers(tmp_path):
    extra = {i: {"answer": str(i)} for i in range(30)}
    message = problem(tmp_path, {"label": {"routing": {"math": "simulated", "default": "critic"},
                                           "critic": HTTP_JUDGE}}, extra=extra)
    assert "label.routing.math: 'simulated'" in message and "gold answers" in message


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
    message = problem(tmp_path, {"policy": {"algorithm": "grpo"}})  # a file without answers or tests
    assert ("policy.algorithm: 'grpo' trains on verifier rewards, but none of your prompts in "
            "policy.grpo.categories ['arithmetic', 'code'] carries a reference answer (column "
            "data.answer_column: 'answer') or tests (column data.tests_column: 'tests')") in message
    assert "use 'dpo' or 'ppo'" in message and "yours that do" not in message


def test_grpo_on_prompts_that_carry_answers_or_tests(tmp_path):
    extra = {1: {"answer": "42"}, 2: {"tests": "assert f() == 1"}}  # a 'math' row and a 'safety' row
    message = problem(tmp_path, {"policy": {"algorithm": "grpo"}}, extra=extra)
    assert "(yours that do are in categories ['math', 'safety']: set policy.grpo.categories)" in message
    check(user_setup(tmp_path, {"policy": {"algorithm": "grpo", "grpo": {"categories": ["math"]}}},
                     extra=extra))


def test_the_embedded_model_needs_the_embedded_prompts(tmp_path):
    message = problem(tmp_path, {"model": {"policy": "embedded"}})
    assert "model.policy: 'embedded'" in message and "data.prompts 'embedded'" in message


def test_the_embedded_world_is_not_checked(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("policy: {algorithm: grpo}\nlabel:\n  routing: {default: simulated}\n")
    check(path)
