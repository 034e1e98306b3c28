"""Params of evaluation's independent judge (`evaluate.judge`) and of verifiable accuracy
(`evaluate.pass_at_k`), issue 10.

The judge reuses the critic's backends (`label.critic`): one home for the server or model folder it
talks to (`label.critic.http`, `label.critic.local`), its constitution and tie margin, and a cache
file of its own, so labeling's answers and evaluation's never share a file."""
from __future__ import annotations

from dataclasses import dataclass, replace

from prefpipe.config.critic import CriticParams
from prefpipe.config.knobs import knob
from prefpipe.vocab import JudgeBackend, Vocabulary, literal


class EvalJudgeBackend(Vocabulary):
    """`evaluate.judge.backend`: which judge gives evaluation's judge win rate."""
    LABEL = "label"  # whatever label.critic.judge is, with its knobs (biases included)
    NONE = "none"    # no judge win rate
    RULE = JudgeBackend.RULE.value    # the built-in rule judge, unbiased (embedded world only)
    HTTP = JudgeBackend.HTTP.value    # the server of label.critic.http
    LOCAL = JudgeBackend.LOCAL.value  # the model folder of label.critic.local


EvalJudgeName = literal(EvalJudgeBackend)
RULE_JUDGE_SKIPPED = ("evaluate.judge: the rule judge reads the embedded world's parse of each response, "
                      "which your prompts lack, so there is no judge win rate; set evaluate.judge.backend "
                      "to 'http' or 'local' (the server of label.critic.http or the model folder of "
                      "label.critic.local), or to 'none' to silence this")


@dataclass(frozen=True)
class EvaluationJudgeParams:
    backend: EvalJudgeName = knob(
        EvalJudgeBackend.LABEL.value,
        "label (the critic of label.critic, with its settings: one HTTP endpoint serves labeling and "
        "evaluation), none (no judge win rate), rule (the built-in judge without verbosity or position "
        "bias; embedded world only), http (the server of label.critic.http, whatever label.critic.judge "
        "is) or local (the model folder of label.critic.local)")
    cache_path: str = knob("store/eval_judge_cache.sqlite",
                           "sqlite file of the HTTP judge's answers during evaluation, apart from "
                           "label.critic.http.cache_path; a rerun against the same server sends "
                           "nothing; '' = no cache")


def eval_critic_params(settings: EvaluationJudgeParams, critic: CriticParams) -> CriticParams | None:
    """The critic settings evaluation's judge is built from (None for backend 'none'): label.critic's,
    with the backend `settings` names, the evaluation cache file and, for 'rule', no biases."""
    if settings.backend == EvalJudgeBackend.NONE:
        return None
    http = replace(critic.http, cache_path=settings.cache_path)
    if settings.backend == EvalJudgeBackend.LABEL:
        return replace(critic, http=http)
    if settings.backend == EvalJudgeBackend.RULE:
        return replace(critic, judge=JudgeBackend.RULE.value, temperature=1.0, verbosity_bias=0.0,
                       position_bias=0.0, http=http)
    return replace(critic, judge=settings.backend, http=http)


def eval_judge_problem(settings: EvaluationJudgeParams, critic: CriticParams) -> str | None:
    """A setting that cannot build the judge, naming the keys (for preflight; None = fine)."""
    resolved = eval_critic_params(settings, critic)
    if resolved is None:
        return None
    if resolved.judge == JudgeBackend.HTTP and not resolved.http.model:
        return (f"evaluate.judge.backend '{settings.backend}' uses the server of label.critic.http, "
                "but label.critic.http.model is empty: name the served model there")
    if resolved.judge == JudgeBackend.LOCAL and not resolved.local.model:
        return (f"evaluate.judge.backend '{settings.backend}' uses label.critic.local, but "
                "label.critic.local.model is empty: give the model folder there")
    return None


def eval_judge_note(settings: EvaluationJudgeParams, critic: CriticParams, has_world: bool) -> str | None:
    """Why evaluation gives no judge win rate (None when it does): backend 'none', or the rule judge
    on prompts without the embedded world's facts."""
    resolved = eval_critic_params(settings, critic)
    if resolved is None:
        return "evaluate.judge.backend is 'none': no judge win rate"
    if resolved.judge == JudgeBackend.RULE and not has_world:
        return RULE_JUDGE_SKIPPED
    return None


@dataclass(frozen=True)
class PassAtKParams:
    samples: int = knob(4, "responses sampled per verifiable held-out prompt (n of Chen et al. 2021) "
                           "from the policy and from the reference; 0 = no pass@k")
    k: list[int] = knob([1, 4], "the k of each pass@k reported (unbiased estimator, Chen et al. 2021, "
                                "eq. 1); every k must be in 1..samples")

    def validate(self) -> str | None:
        if self.samples < 0:
            return f"samples must be >= 0 (0 = no pass@k), got {self.samples}"
        if self.samples == 0:
            return None
        if not self.k:
            return "k must list at least one k (e.g. [1, 4]), or set samples to 0"
        bad = [k for k in self.k if not 1 <= k <= self.samples]
        if bad:
            return (f"k must be in 1..samples ({self.samples}), got {bad[0]}: raise samples or lower k "
                    "(pass@k needs n >= k samples)")
        if len(set(self.k)) != len(self.k):
            return f"k lists a value twice: {self.k}"
        return None
