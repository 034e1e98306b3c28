"""The constitutional AI critic (Bai et al. 2022, RLAIF): a constitution, pluggable judges, both-order
judging and the critic's bias metrics. `make_judge(params.critic)` builds the configured judge."""
from __future__ import annotations

from prefpipe.config.critic import CriticParams
from prefpipe.label.critic.constitution import load_constitution, sample_principle
from prefpipe.label.critic.critic import (
    CritiqueResult,
    Judge,
    critic_bias,
    critic_gold_agreement,
    critique,
)
from prefpipe.label.critic.rule_judge import RuleJudge

__all__ = ["CritiqueResult", "Judge", "critic_bias", "critic_gold_agreement", "critique",
           "load_constitution", "make_judge", "sample_principle"]


def make_judge(params: CriticParams) -> Judge:
    """The judge `params.judge` names, built from its knobs (model judges are imported lazily)."""
    if params.judge == "rule":
        return RuleJudge(params.temperature, params.verbosity_bias, params.position_bias)
    if params.judge == "http":
        from prefpipe.label.critic.http_judge import HttpJudge

        return HttpJudge.from_params(params.http)
    if params.judge == "local":
        from prefpipe.label.critic.lm_judge import LocalLMJudge

        return LocalLMJudge.from_path(params.local.model, params.local.max_length)
    raise ValueError(f"critic.judge: unknown judge {params.judge!r} (available: rule, http, local)")
