"""Params of the constitutional AI critic (issue #4): the constitution, the judge and its knobs."""
from __future__ import annotations

from dataclasses import dataclass, field

from prefpipe.config.knobs import knob
from prefpipe.vocab import JudgeBackend, literal

JudgeName = literal(JudgeBackend)


@dataclass(frozen=True)
class HttpJudgeParams:
    base_url: str = knob("http://127.0.0.1:8000/v1", "OpenAI-compatible API root ending in /v1 (vLLM "
                                                     ":8000/v1, Ollama :11434/v1, OpenAI "
                                                     "https://api.openai.com/v1); the judge POSTs to "
                                                     "{base_url}/chat/completions")
    model: str = knob("", "model name sent with each request, as the server knows it")
    api_key_env: str = knob("", "name of the environment variable holding the API key ('' = send "
                                "none); the key itself is never written to params or the cache")
    concurrency: int = knob(8, "requests in flight at once")
    max_retries: int = knob(5, "retries of a request on connection errors, 429 and 5xx (exponential "
                               "backoff with jitter; a Retry-After header is honoured)")
    timeout_s: float = knob(60.0, "per-request timeout in seconds")
    cache_path: str = knob("store/critic_cache.sqlite", "sqlite file of answers keyed by the sha256 of "
                                                        "(endpoint, model, messages, params), so a "
                                                        "rerun against the same server sends "
                                                        "nothing; '' = no cache")

    def validate(self) -> str | None:
        if self.concurrency < 1:
            return f"concurrency must be >= 1, got {self.concurrency}"
        if self.max_retries < 0:
            return f"max_retries must be >= 0, got {self.max_retries}"
        return f"timeout_s must be > 0, got {self.timeout_s}" if self.timeout_s <= 0 else None


@dataclass(frozen=True)
class LocalJudgeParams:
    model: str = knob("", "local folder of a transformers causal LM (AutoModelForCausalLM + its tokenizer)")
    max_length: int = knob(1024, "prompt tokens fed to the model; longer prompts keep their last "
                                 "max_length tokens (the question and the answer cue)")

    def validate(self) -> str | None:
        return f"max_length must be >= 8, got {self.max_length}" if self.max_length < 8 else None


@dataclass(frozen=True)
class CriticParams:
    constitution: str = knob("", "YAML file of principles [{name, question}, ...]; '' = the built-in "
                                 "constitution (helpful, honest, harmless, ...)")
    judge: JudgeName = knob(
        JudgeBackend.RULE.value, "rule (built-in, default world only), http (any OpenAI-compatible "
                                 "server) or local (a transformers causal LM from a folder)")
    tie_margin: float = knob(0.1, "|P(a) - 0.5| <= tie_margin after averaging both orders gives a tie")
    temperature: float = knob(1.0, "rule judge: P(first) = σ((s_first - s_second) / temperature + "
                                   "position_bias)")
    verbosity_bias: float = knob(0.0, "rule judge: score added per word of a response (> 0 = a "
                                      "critic that likes long answers, and teaches verbosity)")
    position_bias: float = knob(0.0, "rule judge: logit added in favour of the response shown first")
    http: HttpJudgeParams = field(default_factory=HttpJudgeParams)
    local: LocalJudgeParams = field(default_factory=LocalJudgeParams)

    def validate(self) -> str | None:
        if not 0.0 <= self.tie_margin < 0.5:
            return f"tie_margin must be in [0, 0.5), got {self.tie_margin}"
        if self.temperature <= 0:
            return f"temperature must be > 0, got {self.temperature}"
        if self.judge == JudgeBackend.HTTP and not self.http.model:
            return "http.model must name the served model when judge is 'http'"
        if self.judge == JudgeBackend.LOCAL and not self.local.model:
            return "local.model must be a model folder when judge is 'local'"
        return None
