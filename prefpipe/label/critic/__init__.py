"""The constitutional AI critic (Bai et al. 2022, RLAIF): a constitution, pluggable judges, both-order
judging and the critic's bias metrics. `make_judge(params.critic)` builds the configured judge."""
from __future__ import annotations

from collections.abc import Callable

from prefpipe.config.critic import CriticParams
from prefpipe.errors import ConfigError
from prefpipe.label.critic.constitution import load_constitution, sample_principle
from prefpipe.label.critic.critic import (
    CountingJudge,
    CritiqueResult,
    Judge,
    critic_bias,
    critic_gold_agreement,
    critique,
)
from prefpipe.label.critic.rule_judge import RuleJudge
from prefpipe.vocab import JudgeBackend

__all__ = ["JUDGE_BUILDERS", "CountingJudge", "CritiqueResult", "Judge", "critic_bias",
           "critic_gold_agreement", "critique", "load_constitution", "make_judge", "sample_principle"]


def make_judge(params: CriticParams) -> Judge:
    """The judge `params.judge` names, built from its knobs (model judges are imported lazily)."""
    try:
        backend = JudgeBackend(params.judge)
    except ValueError:
        raise ConfigError(f"critic.judge: unknown judge {params.judge!r} "
                         f"(available: {', '.join(JudgeBackend.values())})") from None
    return JUDGE_BUILDERS[backend](params)


def _rule_judge(params: CriticParams) -> Judge:
    return RuleJudge(params.temperature, params.verbosity_bias, params.position_bias)


def _http_judge(params: CriticParams) -> Judge:
    from prefpipe.label.critic.http_judge import HttpJudge

    return HttpJudge.from_params(params.http)


def _local_judge(params: CriticParams) -> Judge:
    from prefpipe.label.critic.lm_judge import LocalLMJudge

    return LocalLMJudge.from_path(params.local.model, params.local.max_length)


JUDGE_BUILDERS: dict[JudgeBackend, Callable[[CriticParams], Judge]] = {
    JudgeBackend.RULE: _rule_judge, JudgeBackend.HTTP: _http_judge, JudgeBackend.LOCAL: _local_judge}
