"""The critic as an independent evaluation judge: policy vs reference on the same prompts.

LLM-as-judge win rate as AlpacaEval and MT-Bench report it (Zheng et al. 2023, "Judging LLM-as-a-Judge
with MT-Bench and Chatbot Arena"), with the critic's own machinery (`prefpipe.label.critic`): each
prompt's two responses are judged in both orders under a principle sampled from the constitution,
P(policy) = (P_pr(first) + 1 - P_rp(first)) / 2, so a judge that only prefers a slot gives a tie;
|P(policy) - 0.5| <= tie_margin is a tie (0.5), else a win (1) or a loss (0). The win rate and its
95% interval are `stats.win_rate` over those outcomes, ties counting half."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from prefpipe.config.critic import CriticParams
from prefpipe.config.eval_judge import (
    EvalJudgeBackend,
    EvaluationJudgeParams,
    eval_critic_params,
    eval_judge_note,
    eval_judge_problem,
)
from prefpipe.errors import ConfigError
from prefpipe.evaluate.stats import win_rate
from prefpipe.label.critic import Judge, critique, make_judge
from prefpipe.label.types import PairToLabel, Principle
from prefpipe.vocab import Choice
from prefpipe.world.prompts import EMBEDDED, WorldPrompt

OUTCOME = {Choice.A.value: 1.0, Choice.TIE.value: 0.5, Choice.B.value: 0.0}  # a = policy, b = reference
log = logging.getLogger("prefpipe")


def world_facts(prompt: WorldPrompt) -> WorldPrompt | None:
    """The prompt's embedded-world facts for the rule judge, None for your own prompts."""
    return prompt if prompt.source == EMBEDDED and prompt.meta else None


def judge_outcomes(prompts: Sequence[WorldPrompt], policy: Sequence[tuple[str, bool]],
                   reference: Sequence[tuple[str, bool]], judge: Judge, principles: Sequence[Principle],
                   seed: int, tie_margin: float) -> list[float]:
    """Per prompt: 1.0 if the judge prefers the policy's response, 0.5 a tie, 0.0 the reference's.

    `policy` and `reference` are (response, finished) per prompt, as `compare.gold_report` takes them.
    Both orders are judged (2 comparisons per prompt, one `judge_many` call); prompt n is judged as
    pair 'evaluate:<n>:<prompt_id>', whose principle is drawn from (seed, that id)."""
    if not len(prompts) == len(policy) == len(reference):
        raise ValueError(f"judge_outcomes: {len(prompts)} prompts but {len(policy)} policy and "
                         f"{len(reference)} reference responses; give one of each per prompt")
    pairs = [PairToLabel(f"evaluate:{n}:{p.prompt_id}", p.prompt_id, p.family, pol[0], pol[1],
                         ref[0], ref[1], p.prompt)
             for n, (p, pol, ref) in enumerate(zip(prompts, policy, reference))]
    world = {p.prompt_id: world_facts(p) for p in prompts}
    result = critique(pairs, world, principles, judge, seed, tie_margin)
    return [OUTCOME[label.choice] for label in result.labels]


def judge_win_rate(outcomes: Sequence[float]) -> dict[str, float]:
    """judge_win_rate with its normal 95% interval (judge_win_rate_low/high), ties as half, and the
    counts judge_wins / judge_ties / judge_losses, from `judge_outcomes`."""
    stats = win_rate(outcomes)
    return {"judge_win_rate": stats["win_rate"], "judge_win_rate_low": stats["win_rate_low"],
            "judge_win_rate_high": stats["win_rate_high"], "judge_wins": stats["wins"],
            "judge_ties": stats["ties"], "judge_losses": stats["losses"]}


def build_eval_judge(settings: EvaluationJudgeParams, critic: CriticParams,
                     has_world: bool) -> Judge | None:
    """Evaluation's judge (`evaluate.judge`), built by the critic's `make_judge` with the evaluation
    cache file; None, with the reason logged, for backend 'none' or the rule judge on prompts that
    lack the embedded world (`has_world` False). A judge that cannot be built raises ConfigError."""
    note = eval_judge_note(settings, critic, has_world)
    if note is not None:
        (log.info if settings.backend == EvalJudgeBackend.NONE else log.warning)("%s", note)
        return None
    problem = eval_judge_problem(settings, critic)
    if problem is not None:
        raise ConfigError(problem)
    return make_judge(eval_critic_params(settings, critic))
