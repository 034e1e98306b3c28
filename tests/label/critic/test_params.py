"""Critic params through the real params loader, and make_judge building each backend."""
from __future__ import annotations

from dataclasses import replace

import pytest

from prefpipe.config.critic import CriticParams
from prefpipe.config.loader import ParamsError, build
from prefpipe.label.critic import JUDGE_BUILDERS, make_judge
from prefpipe.label.critic.http_judge import HttpJudge
from prefpipe.label.critic.rule_judge import RuleJudge
from prefpipe.vocab import JudgeBackend


def load(raw: dict) -> CriticParams:
    return build(CriticParams, raw, "label.critic", "params.yaml")


def test_defaults_give_the_rule_judge():
    params = load({})
    assert (params.judge, params.constitution) == ("rule", "")
    assert (params.verbosity_bias, params.position_bias) == (0.0, 0.0)
    judge = make_judge(load({"temperature": 2.0, "verbosity_bias": 0.1, "position_bias": -0.5}))
    assert isinstance(judge, RuleJudge) and judge.name == "rule"
    assert (judge.temperature, judge.verbosity_bias, judge.position_bias) == (2.0, 0.1, -0.5)


@pytest.mark.parametrize("raw, message", [
    ({"tie_margin": 0.5}, "params.yaml: label.critic.tie_margin must be in [0, 0.5)"),
    ({"temperature": 0}, "label.critic.temperature must be > 0"),
    ({"judge": "gpt"}, "'label.critic.judge' must be one of ['rule', 'http', 'local']"),
    ({"judge": "http"}, "label.critic.http.model must name the served model"),
    ({"judge": "local"}, "label.critic.local.model must be a model folder"),
    ({"http": {"concurrency": 0}}, "label.critic.http.concurrency must be >= 1"),
    ({"http": {"timeout_s": 0}}, "label.critic.http.timeout_s must be > 0"),
    ({"http": {"retries": 3}}, "unknown key 'label.critic.http.retries'"),
])
def test_bad_params_name_the_key(raw, message):
    with pytest.raises(ParamsError) as err:
        load(raw)
    assert message in str(err.value)


def test_make_judge_builds_the_http_judge_from_its_knobs(tmp_path):
    cache = tmp_path / "c.sqlite"
    params = load({"judge": "http", "http": {"base_url": "http://127.0.0.1:9/v1/", "model": "m",
                                             "concurrency": 3, "max_retries": 2, "timeout_s": 5.0,
                                             "cache_path": str(cache)}})
    judge = make_judge(params)
    assert isinstance(judge, HttpJudge) and judge.name == "http:m"
    assert judge.endpoint == "http://127.0.0.1:9/v1/chat/completions"
    assert (judge.concurrency, judge.max_retries, judge.timeout_s) == (3, 2, 5.0)
    assert cache.exists()


def test_make_judge_local_points_at_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="critic.local.model"):
        make_judge(load({"judge": "local", "local": {"model": str(tmp_path / "missing")}}))


def test_every_judge_backend_has_a_builder():
    assert set(JUDGE_BUILDERS) == set(JudgeBackend)


def test_make_judge_names_an_unknown_backend():
    with pytest.raises(ValueError, match=r"critic.judge: unknown judge 'oracle' \(available: rule, http"):
        make_judge(replace(CriticParams(), judge="oracle"))
