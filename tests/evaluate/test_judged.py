"""The critic as evaluation judge: outcomes from both orders against the real loopback OpenAI-compatible
server and with the rule judge on the embedded world, its interval by hand, its own cache file, and a
clear skip where the rule judge has no world to read."""
from __future__ import annotations

import logging
import math

import pytest

from prefpipe.config.critic import CriticParams, HttpJudgeParams
from prefpipe.config.eval_judge import EvaluationJudgeParams
from prefpipe.errors import ConfigError
from prefpipe.evaluate.judged import build_eval_judge, judge_outcomes, judge_win_rate, world_facts
from prefpipe.label.critic import load_constitution
from prefpipe.label.critic.http_judge import HttpJudge
from prefpipe.label.critic.rule_judge import RuleJudge
from prefpipe.world.prompts import WorldPrompt, all_prompts
from tests.label.critic.openai_server import LOSE_LOGPROB, SPACED_WIN_LOGPROB, WIN_LOGPROB, OpenAIServer

PRINCIPLES = load_constitution()
SEED, MARGIN = 3, 0.1
MINE = [WorldPrompt(f"u{i}", "chat", f"Tell me about topic {i}.", {}, "mine.jsonl") for i in range(20)]
SHORT = [(f"Topic {i} is nice.", True) for i in range(20)]  # 4 words
LONG = [(f"Topic {i} is nice and has many more words.", True) for i in range(20)]  # 9 words
# The server's mass on the winning letter ("A" and " A") against the losing one.
P_WIN = (math.exp(WIN_LOGPROB) + math.exp(SPACED_WIN_LOGPROB)) / (
    math.exp(WIN_LOGPROB) + math.exp(SPACED_WIN_LOGPROB) + math.exp(LOSE_LOGPROB))


def http_critic(server: OpenAIServer, tmp_path, judge: str = "http") -> CriticParams:
    http = HttpJudgeParams(base_url=server.base_url, model="judge-model", max_retries=0,
                           cache_path=str(tmp_path / "label_cache.sqlite"))
    return CriticParams(judge=judge, http=http)


def eval_settings(tmp_path, backend: str = "label") -> EvaluationJudgeParams:
    return EvaluationJudgeParams(backend=backend, cache_path=str(tmp_path / "eval_cache.sqlite"))


def outcomes(judge, policy, reference, prompts=MINE) -> list[float]:
    return judge_outcomes(prompts, policy, reference, judge, PRINCIPLES, SEED, MARGIN)


def test_a_policy_whose_answers_are_all_shorter_wins_every_prompt(tmp_path):
    assert P_WIN == pytest.approx(0.8531, abs=1e-4)  # > 0.5 + MARGIN: decisive
    with OpenAIServer(prefer="shorter") as server:
        judge = build_eval_judge(eval_settings(tmp_path), http_critic(server, tmp_path), has_world=False)
        won = outcomes(judge, SHORT, LONG)
        lost = outcomes(judge, LONG, SHORT)
        assert server.requests == 2 * len(MINE)  # both orders; the swapped run asks the same questions
    assert won == [1.0] * 20 and lost == [0.0] * 20
    report = judge_win_rate(won)
    interval = (report["judge_win_rate"], report["judge_win_rate_low"], report["judge_win_rate_high"])
    assert interval == (1, 1, 1)  # every outcome alike: no spread
    assert (report["judge_wins"], report["judge_ties"], report["judge_losses"]) == (20, 0, 0)


def test_the_interval_is_the_normal_one_by_hand(tmp_path):
    policy = SHORT[:15] + LONG[15:]  # shorter on 15 prompts, longer on 5
    with OpenAIServer(prefer="shorter") as server:
        judge = build_eval_judge(eval_settings(tmp_path), http_critic(server, tmp_path), has_world=False)
        report = judge_win_rate(outcomes(judge, policy, LONG[:15] + SHORT[15:]))
    # mean 0.75; sample variance (15·0.25² + 5·0.75²) / 19 = 3.75 / 19; half-width 1.96·√(var / 20)
    half = 1.959963984540054 * math.sqrt(3.75 / 19 / 20)
    assert half == pytest.approx(0.194703, abs=1e-6)
    assert report["judge_win_rate"] == 0.75
    assert report["judge_win_rate_low"] == pytest.approx(0.75 - half, rel=1e-12)
    assert report["judge_win_rate_high"] == pytest.approx(0.75 + half, rel=1e-12)
    assert (report["judge_wins"], report["judge_ties"], report["judge_losses"]) == (15, 0, 5)


def test_equal_length_answers_tie_because_both_orders_cancel_the_servers_position_bias(tmp_path):
    other = [(f"Topic {i} is great.", True) for i in range(20)]  # 4 words, like SHORT
    with OpenAIServer(prefer="shorter") as server:  # equal counts: it always answers A (the first)
        judge = build_eval_judge(eval_settings(tmp_path), http_critic(server, tmp_path), has_world=False)
        tied = outcomes(judge, SHORT, other)
    # P(policy) = (P_WIN + 1 - P_WIN) / 2 = 0.5: a tie, counted as half
    assert tied == [0.5] * 20
    report = judge_win_rate(tied)
    assert (report["judge_win_rate"], report["judge_ties"]) == (0.5, 20)


def test_the_evaluation_cache_is_its_own_file_and_a_rerun_sends_nothing(tmp_path):
    settings = eval_settings(tmp_path)
    with OpenAIServer(prefer="shorter") as server:
        critic = http_critic(server, tmp_path)
        first = build_eval_judge(settings, critic, has_world=False)
        assert isinstance(first, HttpJudge)
        before = outcomes(first, SHORT, LONG)
        assert server.requests == 2 * len(MINE)
        again = build_eval_judge(settings, critic, has_world=False)
        assert outcomes(again, SHORT, LONG) == before
        assert server.requests == 2 * len(MINE)  # every answer came from the cache
        assert again.answer_counts() == {"cache_hits": 2 * len(MINE), "judge_calls": 0}
        uncached = build_eval_judge(eval_settings(tmp_path / "elsewhere"), critic, has_world=False)
        outcomes(uncached, SHORT, LONG)
        assert server.requests == 4 * len(MINE)  # another cache file: asked again
    assert (tmp_path / "eval_cache.sqlite").exists()
    assert not (tmp_path / "label_cache.sqlite").exists()  # labeling's cache untouched


def test_the_rule_judge_on_the_embedded_world_prefers_the_clearly_better_answer():
    world = {p.prompt: p for p in all_prompts(5)}
    add = world["What is 3 plus 4?"]
    code = world["Write a function g(a, b) that returns the larger of a and b."]
    judge = build_eval_judge(EvaluationJudgeParams(backend="rule"), CriticParams(), has_world=True)
    assert isinstance(judge, RuleJudge)
    prompts = [add, add, code, add]
    policy = [("The answer is 7.", True), ("Great question! The answer is 8.", True),
              ("def g(a, b): return max(a, b)", True), ("The answer is 7.", True)]
    reference = [("Great question! The answer is 8. Hope this helps!", True), ("The answer is 7.", True),
                 ("def g(a, b): return a + b", True), ("The answer is 7.", True)]
    assert outcomes(judge, policy, reference, prompts) == [1.0, 0.0, 1.0, 0.5]


def test_backend_rule_drops_the_critics_verbosity_bias_and_label_keeps_it():
    add = {p.prompt: p for p in all_prompts(5)}["What is 3 plus 4?"]
    verbose = CriticParams(verbosity_bias=2.0)  # 2 more words: +4, more than any principle's filler cost
    policy, reference = [("The answer is 7.", True)], [("Great question! The answer is 7.", True)]
    unbiased = build_eval_judge(EvaluationJudgeParams(backend="rule"), verbose, has_world=True)
    biased = build_eval_judge(EvaluationJudgeParams(backend="label"), verbose, has_world=True)
    assert (unbiased.verbosity_bias, biased.verbosity_bias) == (0.0, 2.0)
    assert outcomes(unbiased, policy, reference, [add]) == [1.0]
    assert outcomes(biased, policy, reference, [add]) == [0.0]


def test_the_rule_judge_on_your_own_prompts_is_skipped_with_a_note(caplog):
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        assert build_eval_judge(EvaluationJudgeParams(), CriticParams(), has_world=False) is None
        rule = EvaluationJudgeParams(backend="rule")
        assert build_eval_judge(rule, CriticParams(), has_world=False) is None
    assert caplog.text.count("evaluate.judge: the rule judge reads the embedded world") == 2
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="prefpipe"):
        assert build_eval_judge(EvaluationJudgeParams(backend="none"), CriticParams(), has_world=True) is None
    assert "evaluate.judge.backend is 'none'" in caplog.text
    assert isinstance(build_eval_judge(EvaluationJudgeParams(), CriticParams(), has_world=True), RuleJudge)


def test_an_http_backend_without_a_model_names_the_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"evaluate.judge.backend 'http'.*label.critic.http.model is empty"):
        build_eval_judge(eval_settings(tmp_path, "http"), CriticParams(), has_world=False)


def test_world_facts_only_for_embedded_prompts_with_meta():
    add = all_prompts(2)[0]
    assert world_facts(add) is add
    assert world_facts(WorldPrompt("x", "chat", "hi", {})) is None  # how evaluate wraps your prompts
    assert world_facts(WorldPrompt("y", "math", "1+1?", {"answer": "2"}, "mine.jsonl")) is None


def test_one_response_of_each_per_prompt():
    with pytest.raises(ValueError, match="20 prompts but 19 policy"):
        outcomes(RuleJudge(), SHORT[:19], LONG)
