"""A judge behind any OpenAI-compatible `/v1/chat/completions` endpoint (vLLM, Ollama, TGI, OpenAI).

The judge reads the multiple-choice question of Bai et al. 2022 and answers one letter. With
logprobs (`logprobs: true, top_logprobs: 5`) P(first) is the normalised probability of "A" against
"B" at the answer position, a soft label; without them the answer text gives 0.9 / 0.1 (0.5 when it
names neither). Requests run `concurrency` at a time, retry connection errors, 429 and 5xx with
exponential backoff and jitter (honouring Retry-After), and are cached in sqlite by a hash of the
endpoint and the request content, so a rerun against the same server sends nothing; `answer_counts`
says how many answers came from the cache and how many from the judge."""
from __future__ import annotations

import email.utils
import json
import math
import os
import random
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import UTC, datetime

import httpx

from prefpipe.config.critic import HttpJudgeParams
from prefpipe.errors import LabelerError
from prefpipe.label.critic.constitution import render_question
from prefpipe.label.types import Comparison, Judgment
from prefpipe.store.judge_cache import AnswerCache, cache_key

REQUEST_PARAMS = {"max_tokens": 5, "temperature": 0.0, "logprobs": True, "top_logprobs": 5}
TEXT_CONFIDENCE = 0.9  # P(first) when only the answer text is known
MAX_RETRY_AFTER_S = 120.0  # a longer Retry-After is cut to this
ANSWER_TEXT = re.compile(r"\b([AB])\b")
TOKEN_PUNCTUATION = " \t\n()[]*.:\"'"


class JudgeHTTPError(LabelerError):
    """The endpoint failed for good; the message names the endpoint and the status."""


def judge_messages(comparison: Comparison) -> list[dict]:
    """The chat messages sent for one comparison (a single user turn: some models have no system role)."""
    return [{"role": "user", "content": render_question(comparison)}]


def parse_answer(payload: dict, endpoint: str) -> Judgment:
    """P(first) from a chat completion: top-logprob mass of A vs B at the first answer token, else
    the answer text."""
    try:
        choice = payload["choices"][0]
        content = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise JudgeHTTPError(f"{endpoint}: reply is not a chat completion (no choices[0].message): "
                             f"{json.dumps(payload)[:200]}") from err
    for position in (choice.get("logprobs") or {}).get("content") or []:
        token = (position.get("token") or "").strip(TOKEN_PUNCTUATION)
        if not token:
            continue  # whitespace or "(" before the letter
        if token not in ("A", "B"):
            break
        tops = position.get("top_logprobs") or [position]
        pairs = tops.items() if isinstance(tops, dict) else ((t["token"], t["logprob"]) for t in tops)
        mass = {"A": 0.0, "B": 0.0}
        for text, logprob in pairs:
            letter = text.strip(TOKEN_PUNCTUATION)
            if letter in mass and logprob is not None:
                mass[letter] += math.exp(logprob)
        if mass["A"] + mass["B"] > 0:
            p_first = mass["A"] / (mass["A"] + mass["B"])
            return Judgment(p_first, f"answered {token}; P(A)={mass['A']:.3g}, P(B)={mass['B']:.3g}")
        break
    match = ANSWER_TEXT.search(content)
    if match is None:
        return Judgment(0.5, f"no A/B in answer {content[:40]!r}")
    p_first = TEXT_CONFIDENCE if match.group(1) == "A" else 1.0 - TEXT_CONFIDENCE
    return Judgment(p_first, f"answered {match.group(1)} (text only, no logprobs)")


def retry_after_s(response: httpx.Response) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), capped; None if absent."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class HttpJudge:
    """Judge through an OpenAI-compatible chat completions server; `name` is 'http:<model>'.

    The API key is read from the environment variable `api_key_env` and only ever sent as a
    header. `backoff_s` is the first retry delay (doubling each retry, up to `max_backoff_s`,
    times a jitter factor in [0.5, 1])."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "", concurrency: int = 8,
                 max_retries: int = 5, timeout_s: float = 60.0, cache_path: str = "",
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0):
        if concurrency < 1:
            raise ValueError(f"critic.http.concurrency must be >= 1, got {concurrency}")
        self.endpoint = base_url.rstrip("/") + "/chat/completions"
        self.model, self.name = model, f"http:{model}"
        self.concurrency, self.max_retries, self.timeout_s = concurrency, max_retries, timeout_s
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.api_key_env = api_key_env
        if api_key_env and not os.environ.get(api_key_env):
            raise ValueError(f"critic.http.api_key_env names {api_key_env!r}, but that environment "
                             "variable is not set: export it, or set api_key_env to '' for a server "
                             "without keys")
        self.cache = AnswerCache(cache_path) if cache_path else None
        self.requests_sent = 0  # HTTP requests made, retries included
        self.cache_hits = 0  # comparisons answered from the cache
        self.judge_calls = 0  # distinct requests answered by the endpoint (retries not counted)
        self._count_lock = threading.Lock()
        self._client: httpx.Client | None = None  # made on first use, kept for keep-alive

    def close(self) -> None:
        """Close the connection pool (a later judge_many opens a new one)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> HttpJudge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _http(self) -> httpx.Client:
        if self._client is None:
            headers = {}
            if self.api_key_env:  # read at use, sent as a header only
                headers["Authorization"] = f"Bearer {os.environ.get(self.api_key_env, '')}"
            limits = httpx.Limits(max_connections=self.concurrency,
                                  max_keepalive_connections=self.concurrency)
            self._client = httpx.Client(timeout=self.timeout_s, headers=headers, limits=limits)
        return self._client

    @classmethod
    def from_params(cls, params: HttpJudgeParams) -> HttpJudge:
        """Build from a HttpJudgeParams (`prefpipe.config.critic`)."""
        return cls(params.base_url, params.model, params.api_key_env, params.concurrency,
                   params.max_retries, params.timeout_s, params.cache_path)

    def judge_many(self, comparisons: Sequence[Comparison]) -> list[Judgment]:
        keyed = []
        for comparison in comparisons:
            messages = judge_messages(comparison)
            keyed.append((cache_key(self.endpoint, self.model, messages, REQUEST_PARAMS), messages))
        answers = self.cache.get_many([key for key, _ in keyed]) if self.cache is not None else {}
        self.cache_hits += sum(key in answers for key, _ in keyed)
        missing = {key: messages for key, messages in keyed if key not in answers}
        if missing:
            answers.update(self._fetch(missing))
            self.judge_calls += len(missing)
        return [parse_answer(json.loads(answers[key]), self.endpoint) for key, _ in keyed]

    def answer_counts(self) -> dict[str, int]:
        """{'cache_hits', 'judge_calls'} since this judge was made (see `CountingJudge`)."""
        return {"cache_hits": self.cache_hits, "judge_calls": self.judge_calls}

    def _fetch(self, missing: dict[str, list[dict]]) -> dict[str, str]:
        """POST each request, `concurrency` at a time; each answer is cached as soon as it arrives."""
        client = self._http()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="http-judge") as pool:
            futures = {pool.submit(self._post, client, key, messages): key
                       for key, messages in missing.items()}
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [future for future in done if future.exception() is not None]
            if failed:
                pool.shutdown(wait=True, cancel_futures=True)
                raise failed[0].exception()
            return {futures[future]: future.result() for future in done}

    def _post(self, client: httpx.Client, key: str, messages: list[dict]) -> str:
        """One request with retries; returns the reply body (checked to be a chat completion), cached."""
        body = {"model": self.model, "messages": messages, **REQUEST_PARAMS}
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                with self._count_lock:
                    self.requests_sent += 1
                response = client.post(self.endpoint, json=body)
            except httpx.UnsupportedProtocol as err:
                raise JudgeHTTPError(f"{self.endpoint}: not an http(s) URL ({err}); fix "
                                     "critic.http.base_url") from err
            except httpx.TransportError as err:
                problem = f"{type(err).__name__}: {err}"
            else:
                if response.is_success:
                    return self._accept(response, key)
                if response.status_code != 429 and response.status_code < 500:
                    raise JudgeHTTPError(f"{self.endpoint}: HTTP {response.status_code} (not retried; "
                                         f"check critic.http.model and the server): {response.text[:300]}")
                problem, retry_after = f"HTTP {response.status_code}", retry_after_s(response)
            if attempt == self.max_retries:
                raise JudgeHTTPError(f"{self.endpoint}: gave up after {attempt + 1} attempts "
                                     f"(critic.http.max_retries={self.max_retries}); last: {problem}")
            backoff = min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * random.uniform(0.5, 1.0)
            time.sleep(retry_after if retry_after is not None else backoff)
        raise AssertionError("unreachable")

    def _accept(self, response: httpx.Response, key: str) -> str:
        try:
            payload = response.json()
        except ValueError as err:
            raise JudgeHTTPError(f"{self.endpoint}: HTTP {response.status_code} but the body is not JSON: "
                                 f"{response.text[:200]!r}") from err
        parse_answer(payload, self.endpoint)  # fail now, before a bad reply is cached
        text = json.dumps(payload)
        if self.cache is not None:
            self.cache.put(key, text)
        return text
