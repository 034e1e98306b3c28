"""`evaluate.judge` and `evaluate.pass_at_k` (prefpipe/config/eval_judge.py) through the real params
loader: defaults, errors that name the key, and how each judge backend resolves label.critic's settings."""
from __future__ import annotations

import pytest

from prefpipe.config.critic import CriticParams, HttpJudgeParams, LocalJudgeParams
from prefpipe.config.eval_judge import (
    RULE_JUDGE_SKIPPED,
    EvalJudgeBackend,
    EvaluationJudgeParams,
    PassAtKParams,
    eval_critic_params,
    eval_judge_note,
    eval_judge_problem,
)
from prefpipe.config.loader import ParamsError, build
from prefpipe.vocab import JudgeBackend

CRITIC = CriticParams(judge="http", verbosity_bias=0.3, position_bias=0.2, tie_margin=0.05,
                      http=HttpJudgeParams(model="m", cache_path="store/critic_cache.sqlite"),
                      local=LocalJudgeParams(model="models/judge"))


def judge_params(raw: dict) -> EvaluationJudgeParams:
    return build(EvaluationJudgeParams, raw, "evaluate.judge", "params.yaml")


def pass_params(raw: dict) -> PassAtKParams:
    return build(PassAtKParams, raw, "evaluate.pass_at_k", "params.yaml")


def test_defaults():
    settings = judge_params({})
    assert (settings.backend, settings.cache_path) == ("label", "store/eval_judge_cache.sqlite")
    assert settings.cache_path != HttpJudgeParams().cache_path  # its own file, not labeling's
    assert (pass_params({}).samples, pass_params({}).k) == (4, [1, 4])
    assert set(EvalJudgeBackend.values()) == {"label", "none"} | set(JudgeBackend.values())


@pytest.mark.parametrize("raw, message", [
    ({"backend": "gpt"},
     "'evaluate.judge.backend' must be one of ['label', 'none', 'rule', 'http', 'local']"),
    ({"cache": "x"}, "unknown key 'evaluate.judge.cache'"),
])
def test_bad_judge_params_name_the_key(raw, message):
    with pytest.raises(ParamsError) as err:
        judge_params(raw)
    assert message in str(err.value)


@pytest.mark.parametrize("raw, message", [
    ({"k": [1, 5]}, "evaluate.pass_at_k.k must be in 1..samples (4), got 5"),
    ({"k": [0]}, "evaluate.pass_at_k.k must be in 1..samples (4), got 0"),
    ({"k": []}, "evaluate.pass_at_k.k must list at least one k"),
    ({"k": [1, 1]}, "evaluate.pass_at_k.k lists a value twice"),
    ({"samples": -1}, "evaluate.pass_at_k.samples must be >= 0"),
    ({"samples": 2}, "evaluate.pass_at_k.k must be in 1..samples (2), got 4"),
    ({"k": "4"}, "'evaluate.pass_at_k.k' must be a list"),
])
def test_bad_pass_at_k_params_name_the_key(raw, message):
    with pytest.raises(ParamsError) as err:
        pass_params(raw)
    assert message in str(err.value)


def test_good_pass_at_k_params():
    assert pass_params({"samples": 8, "k": [1, 2, 8]}).k == [1, 2, 8]
    assert pass_params({"samples": 0, "k": [16]}).samples == 0  # off: k is not read


def test_label_keeps_the_critic_but_swaps_in_the_evaluation_cache():
    resolved = eval_critic_params(EvaluationJudgeParams(cache_path="e.sqlite"), CRITIC)
    assert resolved.http.cache_path == "e.sqlite" and CRITIC.http.cache_path == "store/critic_cache.sqlite"
    assert (resolved.judge, resolved.verbosity_bias, resolved.tie_margin) == ("http", 0.3, 0.05)
    assert resolved.http.model == "m"


def test_rule_is_the_unbiased_rule_judge_and_http_or_local_switch_the_backend():
    rule = eval_critic_params(EvaluationJudgeParams(backend="rule"), CRITIC)
    assert (rule.judge, rule.temperature, rule.verbosity_bias, rule.position_bias) == ("rule", 1.0, 0.0, 0.0)
    local = eval_critic_params(EvaluationJudgeParams(backend="local"), CriticParams(local=CRITIC.local))
    assert (local.judge, local.local.model) == ("local", "models/judge")
    http = eval_critic_params(EvaluationJudgeParams(backend="http"), CriticParams(http=CRITIC.http))
    assert (http.judge, http.http.model) == ("http", "m")
    assert http.http.cache_path == "store/eval_judge_cache.sqlite"
    assert eval_critic_params(EvaluationJudgeParams(backend="none"), CRITIC) is None


@pytest.mark.parametrize("backend, critic, problem", [
    ("http", CriticParams(), "evaluate.judge.backend 'http' uses the server of label.critic.http, but "
                             "label.critic.http.model is empty"),
    ("local", CriticParams(), "evaluate.judge.backend 'local' uses label.critic.local, but "
                              "label.critic.local.model is empty"),
    ("http", CRITIC, None), ("local", CRITIC, None), ("label", CriticParams(), None),
    ("none", CriticParams(), None),
])
def test_problems_name_the_keys(backend, critic, problem):
    found = eval_judge_problem(EvaluationJudgeParams(backend=backend), critic)
    assert found == problem if problem is None else found.startswith(problem)


def test_the_rule_judge_without_the_world_gets_a_note():
    rule = EvaluationJudgeParams(backend="rule")
    assert eval_judge_note(EvaluationJudgeParams(), CriticParams(), has_world=False) == RULE_JUDGE_SKIPPED
    assert eval_judge_note(rule, CRITIC, has_world=False) == RULE_JUDGE_SKIPPED
    assert eval_judge_note(EvaluationJudgeParams(), CriticParams(), has_world=True) is None
    assert eval_judge_note(EvaluationJudgeParams(), CRITIC, has_world=False) is None  # label = http here
    assert "'none'" in eval_judge_note(EvaluationJudgeParams(backend="none"), CRITIC, has_world=True)
