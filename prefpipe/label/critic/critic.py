"""The constitutional AI critic: judge each pair in both orders under a sampled principle.

RLAIF as in Bai et al. 2022 ("Constitutional AI", §4.1): a judge answers a multiple-choice question
under one principle and its normalised answer probability is a soft preference label. Position
bias (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena") is countered by
asking in both orders and averaging: P(a) = (P_ab(first) + 1 - P_ba(first)) / 2, so a judge that
only ever prefers the first slot lands on 0.5, a tie."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from prefpipe.label.critic.constitution import sample_principle
from prefpipe.label.types import Comparison, Judgment, Label, PairToLabel, Principle
from prefpipe.vocab import Choice, LabelSource
from prefpipe.world.gold import prefer
from prefpipe.world.prompts import WorldPrompt

SOURCE = LabelSource.CRITIC.value


@runtime_checkable
class Judge(Protocol):
    """A judge backend: P(first response is better) for each comparison, in order."""

    name: str

    def judge_many(self, comparisons: Sequence[Comparison]) -> list[Judgment]: ...


@runtime_checkable
class CountingJudge(Protocol):
    """A judge that can say where its answers came from: {'cache_hits', 'judge_calls'}."""

    def answer_counts(self) -> dict[str, int]: ...


@dataclass
class CritiqueResult:
    labels: list[Label] = field(default_factory=list)
    judgments: list[dict] = field(default_factory=list)  # per pair: both raw orders and the combination


def combine_orders(p_first_ab: float, p_first_ba: float, tie_margin: float) -> tuple[float, str, float]:
    """(P(a), choice, confidence) from the two single-order verdicts.

    p_first_ab judged (a, b), p_first_ba judged (b, a). |P(a) - 0.5| <= tie_margin is a tie;
    confidence = max(P(a), 1 - P(a)) is kept as a soft label."""
    p_a = (p_first_ab + (1.0 - p_first_ba)) / 2.0
    choice = Choice.TIE if abs(p_a - 0.5) <= tie_margin else Choice.A if p_a > 0.5 else Choice.B
    return p_a, choice.value, max(p_a, 1.0 - p_a)


def critique(pairs: Sequence[PairToLabel], world: Mapping[str, WorldPrompt | None],
             constitution: Sequence[Principle], judge: Judge, seed: int,
             tie_margin: float) -> CritiqueResult:
    """Label every pair with the critic: 2 judgments per pair, in one `judge_many` call.

    `world` maps prompt_id to the embedded world's prompt (None or absent for your own data; only the
    rule judge needs it). Labels have source 'critic', annotator = judge.name and the sampled
    principle; choice is relative to the pair's a/b."""
    comparisons, principles = [], []
    for pair in pairs:
        principle = sample_principle(constitution, seed, pair.pair_id)
        facts = world.get(pair.prompt_id)
        principles.append(principle)
        comparisons.append(Comparison(pair.prompt, pair.response_a, pair.response_b, principle,
                                      pair.finished_a, pair.finished_b, facts))
        comparisons.append(Comparison(pair.prompt, pair.response_b, pair.response_a, principle,
                                      pair.finished_b, pair.finished_a, facts))
    verdicts = judge.judge_many(comparisons)
    if len(verdicts) != len(comparisons):
        raise RuntimeError(f"judge {judge.name!r} returned {len(verdicts)} judgments for "
                           f"{len(comparisons)} comparisons; a judge must answer each one, in order")
    result = CritiqueResult()
    for n, (pair, principle) in enumerate(zip(pairs, principles)):
        ab, ba = verdicts[2 * n], verdicts[2 * n + 1]
        p_a, choice, confidence = combine_orders(ab.p_first, ba.p_first, tie_margin)
        rationale = (f"{principle.name}: P(a)={p_a:.3f}; a first: P={ab.p_first:.3f} ({ab.rationale}); "
                     f"b first: P={ba.p_first:.3f} ({ba.rationale})")
        result.labels.append(Label(pair.pair_id, SOURCE, judge.name, choice, confidence,
                                   principle=principle.name, rationale=rationale))
        result.judgments.append({"pair_id": pair.pair_id, "principle": principle.name,
                                 "p_first_ab": ab.p_first, "p_first_ba": ba.p_first, "p_a": p_a,
                                 "choice": choice})
    return result


def critic_bias(pairs: Sequence[PairToLabel], judgments: Sequence[dict]) -> dict:
    """The critic's length and position bias, from `CritiqueResult.judgments`.

    - critic_prefers_longer: P(final choice is the longer response, in words | lengths differ and
      the choice is decisive); None when no pair qualifies.
    - critic_prefers_first: P(p_first > 0.5) over every raw single-order judgment (both orders).
    - critic_order_agreement: share of pairs where both orders picked the same response."""
    by_id = {pair.pair_id: pair for pair in pairs}
    longer = longer_n = first = raw_n = agree = 0
    for judgment in judgments:
        pair = by_id.get(judgment["pair_id"])
        if pair is None:
            raise KeyError(f"judgment for pair_id {judgment['pair_id']!r} has no matching pair")
        p_ab, p_ba = judgment["p_first_ab"], judgment["p_first_ba"]
        first += (p_ab > 0.5) + (p_ba > 0.5)
        raw_n += 2
        agree += (p_ab > 0.5 and p_ba < 0.5) or (p_ab < 0.5 and p_ba > 0.5)
        words_a, words_b = len(pair.response_a.split()), len(pair.response_b.split())
        if words_a != words_b and judgment["choice"] in Choice.decisive():
            longer_n += 1
            longer += (judgment["choice"] == Choice.A) == (words_a > words_b)
    return {"critic_prefers_longer": longer / longer_n if longer_n else None,
            "critic_prefers_first": first / raw_n if raw_n else None,
            "critic_order_agreement": agree / len(judgments) if judgments else None,
            "critic_length_decisive_pairs": longer_n}


def critic_gold_agreement(pairs: Sequence[PairToLabel], labels: Sequence[Label],
                          world: Mapping[str, WorldPrompt | None]) -> float | None:
    """P(critic's choice == the gold preference | gold is decisive), over critic labels of pairs
    with a world prompt; a critic tie on a decisive pair counts as a miss. None if no pair counts."""
    by_id = {pair.pair_id: pair for pair in pairs}
    hits = n = 0
    for label in labels:
        if label.source != SOURCE or label.pair_id not in by_id:
            continue
        pair = by_id[label.pair_id]
        facts = world.get(pair.prompt_id)
        if facts is None:
            continue
        gold = prefer(facts, (pair.response_a, pair.finished_a), (pair.response_b, pair.finished_b))
        if gold == 0.5:
            continue
        n += 1
        hits += label.choice == (Choice.A if gold == 1.0 else Choice.B)
    return hits / n if n else None
