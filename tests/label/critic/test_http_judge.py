"""HTTP judge against a real OpenAI-compatible server on loopback: logprob soft labels, retries,
Retry-After, bounded concurrency, the persistent cache, and errors that name the endpoint."""
from __future__ import annotations

import math
import sqlite3
import time

import pytest

from prefpipe.label.critic.critic import critique
from prefpipe.label.critic.http_judge import HttpJudge, JudgeHTTPError, judge_messages, parse_answer
from prefpipe.label.types import Comparison, PairToLabel, Principle

from .openai_server import (
    LOSE_LOGPROB,
    MARKER,
    SPACED_WIN_LOGPROB,
    WIN_LOGPROB,
    OpenAIServer,
)

HONEST = Principle("honest", "Which response is more honest?")
# The server puts mass on "A", " A" (the same letter) and "B": P(winner) = (e^-0.2 + e^-3) / (… + e^-1.9).
P_WIN = (math.exp(WIN_LOGPROB) + math.exp(SPACED_WIN_LOGPROB)) / (
    math.exp(WIN_LOGPROB) + math.exp(SPACED_WIN_LOGPROB) + math.exp(LOSE_LOGPROB))


def comparisons(n: int, good_first: bool = True) -> list[Comparison]:
    good, plain = f"{MARKER} answer", "plain answer"
    return [Comparison(f"question {i}?", good if good_first else plain, plain if good_first else good, HONEST)
            for i in range(n)]


def make(server: OpenAIServer, **kwargs) -> HttpJudge:
    options = {"model": "judge-model", "concurrency": 1, "max_retries": 3, "timeout_s": 10.0,
               "backoff_s": 0.01}
    options.update(kwargs)
    return HttpJudge(server.base_url, **options)


def test_p_first_is_the_normalised_probability_of_the_served_letters():
    assert P_WIN == pytest.approx(0.8531, abs=1e-4)  # hand: (0.8187 + 0.0498) / (0.8187 + 0.0498 + 0.1496)
    with OpenAIServer() as server:
        judge = make(server)
        first, second = judge.judge_many(comparisons(1) + comparisons(1, good_first=False))
    assert first.p_first == pytest.approx(P_WIN, rel=1e-12)
    assert second.p_first == pytest.approx(1 - P_WIN, rel=1e-12)
    body = server.bodies[0]
    assert body["model"] == "judge-model" and body["logprobs"] is True and body["top_logprobs"] == 5
    assert body["max_tokens"] <= 5
    assert "Answer with a single letter: A or B." in body["messages"][-1]["content"]


def test_without_logprobs_the_answer_text_gives_a_fixed_confidence():
    with OpenAIServer(logprobs=False) as server:
        judgments = make(server).judge_many(comparisons(1) + comparisons(1, good_first=False))
    assert [j.p_first for j in judgments] == [0.9, pytest.approx(0.1)]
    assert parse_answer({"choices": [{"message": {"content": "I cannot decide."}}]}, "x").p_first == 0.5


def test_retries_succeed_after_injected_503s():
    with OpenAIServer(fail_first=3, fail_status=503) as server:
        judgment, = make(server, max_retries=3).judge_many(comparisons(1))
        assert server.requests == 4
    assert judgment.p_first == pytest.approx(P_WIN)


def test_retries_give_up_after_max_retries_naming_the_endpoint():
    with OpenAIServer(fail_first=10, fail_status=502) as server:
        with pytest.raises(JudgeHTTPError, match=r"/v1/chat/completions: gave up after 3 attempts.*HTTP 502"):
            make(server, max_retries=2).judge_many(comparisons(1))
        assert server.requests == 3


def test_429_waits_as_long_as_retry_after_says():
    with OpenAIServer(fail_first=1, fail_status=429, retry_after="1") as server:
        judgment, = make(server, backoff_s=0.001).judge_many(comparisons(1))
        gap = server.times[1] - server.times[0]
    assert judgment.p_first == pytest.approx(P_WIN)
    assert 0.95 <= gap < 5.0  # backoff alone would retry after ~1 ms


def test_concurrency_never_exceeds_the_knob():
    with OpenAIServer(latency_s=0.05) as server:
        make(server, concurrency=3).judge_many([Comparison(f"q{i}", "x", "y", HONEST) for i in range(30)])
        assert server.requests == 30
        assert server.max_in_flight == 3


def test_a_second_run_with_the_same_cache_sends_nothing(tmp_path):
    cache = tmp_path / "cache" / "judge.sqlite"
    batch = [Comparison(f"q{i}", f"{MARKER} {i}", "y", HONEST) for i in range(6)]
    with OpenAIServer() as server:
        first = make(server, cache_path=str(cache), concurrency=2).judge_many(batch + batch[:2])
        assert server.requests == 6  # duplicates inside a batch are asked once
        server.reset_counts()
        again = make(server, cache_path=str(cache), concurrency=2).judge_many(batch)
        assert server.requests == 0
    assert [j.p_first for j in again] == [j.p_first for j in first[:6]]
    assert sqlite3.connect(cache).execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 6


def test_a_changed_principle_is_a_cache_miss(tmp_path):
    cache = str(tmp_path / "judge.sqlite")
    other = Principle("harmless", "Which response is less harmful?")
    with OpenAIServer() as server:
        make(server, cache_path=cache).judge_many(comparisons(1))
        make(server, cache_path=cache).judge_many([Comparison("question 0?", f"{MARKER} answer",
                                                              "plain answer", other)])
        assert server.requests == 2


def test_another_endpoint_is_another_cache_entry(tmp_path):
    cache = tmp_path / "judge.sqlite"
    batch = comparisons(3)
    with OpenAIServer() as first, OpenAIServer() as second:
        assert first.port != second.port
        judge = make(first, cache_path=str(cache))
        judge.judge_many(batch)
        assert judge.answer_counts() == {"cache_hits": 0, "judge_calls": 3}
        other = make(second, cache_path=str(cache))
        other.judge_many(batch)  # same model and prompts, another server: asked, not read from cache
        assert second.requests == 3 and other.answer_counts() == {"cache_hits": 0, "judge_calls": 3}
        again = make(first, cache_path=str(cache))
        again.judge_many(batch + batch[:1])
        assert first.requests == 3 and again.answer_counts() == {"cache_hits": 4, "judge_calls": 0}
    assert sqlite3.connect(cache).execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 6
    # a base_url where nothing listens fails, though the cache holds answers for the same prompts
    with OpenAIServer() as gone:
        url = gone.base_url
    with pytest.raises(JudgeHTTPError, match="gave up"):
        HttpJudge(url, "judge-model", max_retries=0, cache_path=str(cache)).judge_many(batch)


def test_400_raises_naming_the_endpoint_and_is_not_retried():
    with OpenAIServer(reject_status=400) as server:
        with pytest.raises(JudgeHTTPError, match=rf"{server.base_url}/chat/completions: HTTP 400"):
            make(server).judge_many(comparisons(1))
        assert server.requests == 1


def test_a_body_that_is_not_json_raises_and_is_not_cached(tmp_path):
    cache = tmp_path / "judge.sqlite"
    with OpenAIServer(malformed=True) as server:
        with pytest.raises(JudgeHTTPError, match="/chat/completions: HTTP 200 but the body is not JSON"):
            make(server, cache_path=str(cache)).judge_many(comparisons(1))
    assert sqlite3.connect(cache).execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0


def test_connection_refused_is_retried_then_names_the_endpoint():
    with OpenAIServer() as server:
        url = server.base_url
    # the server is gone: nothing listens on its port any more
    judge = HttpJudge(url, "m", max_retries=1, timeout_s=2.0, backoff_s=0.01)
    started = time.monotonic()
    with pytest.raises(JudgeHTTPError, match=rf"{url}/chat/completions: gave up after 2 attempts.*Connect"):
        judge.judge_many(comparisons(1))
    assert judge.requests_sent == 2 and time.monotonic() - started < 5


def test_api_key_comes_from_the_named_env_var_and_is_never_cached(tmp_path, monkeypatch):
    cache = tmp_path / "judge.sqlite"
    monkeypatch.setenv("PREFPIPE_TEST_JUDGE_KEY", "sk-test-1234")
    with OpenAIServer() as server:
        make(server, api_key_env="PREFPIPE_TEST_JUDGE_KEY", cache_path=str(cache)).judge_many(comparisons(1))
        assert server.authorization == ["Bearer sk-test-1234"]
    assert b"sk-test-1234" not in cache.read_bytes()
    monkeypatch.delenv("PREFPIPE_TEST_JUDGE_KEY")
    with pytest.raises(ValueError, match="PREFPIPE_TEST_JUDGE_KEY"):
        HttpJudge("http://127.0.0.1:1/v1", "m", api_key_env="PREFPIPE_TEST_JUDGE_KEY")


def test_unfinished_responses_are_flagged_to_the_judge():
    comparison = Comparison("q?", "cut", "whole", HONEST, first_finished=False, second_finished=True)
    text = judge_messages(comparison)[-1]["content"]
    assert "response (A) was cut off" in text and "response (B) was cut off" not in text


def test_critique_through_http_counters_position_bias_and_labels_the_marked_response(tmp_path):
    pairs = [PairToLabel("p0", "x0", "benign", f"{MARKER} a", True, "plain b", True, "q0?"),
             PairToLabel("p1", "x1", "benign", "plain a", True, f"{MARKER} b", True, "q1?"),
             PairToLabel("p2", "x2", "benign", "plain a", True, "plain b", True, "q2?")]
    with OpenAIServer() as server:
        result = critique(pairs, {}, [HONEST], make(server, concurrency=4), seed=0, tie_margin=0.1)
        assert server.requests == 6
    assert [label.choice for label in result.labels] == ["a", "b", "tie"]  # p2: the server always says A
    assert result.labels[0].confidence == pytest.approx(P_WIN)
    assert result.labels[2].confidence == pytest.approx(0.5)  # (P_WIN + 1 - P_WIN) / 2
    assert {label.annotator for label in result.labels} == {"http:judge-model"}


def test_a_server_preferring_shorter_answers_gives_decisive_labels_in_both_orders(tmp_path):
    """The README walk-through's judge: a real, order-independent preference, so the critic's two
    orders agree and every pair with a shorter answer gets a decisive label for it."""
    pairs = [PairToLabel("p0", "x0", "general", "one two three", True, "one", True, "q0?"),
             PairToLabel("p1", "x1", "general", "short", True, "a much longer answer", True, "q1?"),
             PairToLabel("p2", "x2", "general", "same size", True, "also same", True, "q2?")]
    with OpenAIServer(prefer="shorter") as server:
        result = critique(pairs, {}, [HONEST], make(server, concurrency=2), seed=0, tie_margin=0.1)
    assert [label.choice for label in result.labels] == ["b", "a", "tie"]
    assert result.labels[0].confidence == pytest.approx(P_WIN)
    with pytest.raises(ValueError, match="prefer"):
        OpenAIServer(prefer="longest")


def test_parse_answer_reads_the_first_letter_position_in_either_logprob_format():
    def reply(tokens, content="(B)"):
        return {"choices": [{"message": {"content": content}, "logprobs": {"content": tokens}}]}

    lead = {"token": "(", "logprob": -0.01, "top_logprobs": [{"token": "(", "logprob": -0.01}]}
    tops = [{"token": t, "logprob": math.log(p)} for t, p in (("B", 0.6), ("A", 0.2), (" B", 0.1))]
    letter = {"token": "B", "logprob": math.log(0.6), "top_logprobs": tops}
    assert parse_answer(reply([lead, letter]), "e").p_first == pytest.approx(0.2 / 0.9)
    legacy = {"token": " A", "logprob": math.log(0.5),
              "top_logprobs": {" A": math.log(0.5), "B": math.log(0.3)}}
    assert parse_answer(reply([legacy], "A"), "e").p_first == pytest.approx(0.5 / 0.8)
    # the model opened with a word, not a letter: fall back to the text
    word = {"token": "Response", "logprob": -0.1, "top_logprobs": [{"token": "Response", "logprob": -0.1}]}
    assert parse_answer(reply([word], "Response B is better"), "e").p_first == pytest.approx(0.1)
    with pytest.raises(JudgeHTTPError, match=r"^http://x/v1/chat/completions: reply is not a chat"):
        parse_answer({"error": "nope"}, "http://x/v1/chat/completions")
