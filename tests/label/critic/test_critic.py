"""The critic: both-order arithmetic, position and length bias metrics, principle recording, and the
rule judge on real world pairs (length preference follows verbosity_bias; gold agreement)."""
from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from prefpipe.config.schema import WorldParams
from prefpipe.label.critic.constitution import load_constitution, sample_principle
from prefpipe.label.critic.critic import (
    combine_orders,
    critic_bias,
    critic_gold_agreement,
    critique,
)
from prefpipe.label.critic.rule_judge import RuleJudge
from prefpipe.label.types import Comparison, Judgment, Label, PairToLabel, Principle
from prefpipe.world.prompts import WorldPrompt, all_prompts
from prefpipe.world.responses import render, sample_style

HONEST = Principle("honest", "Which is more honest?")


class ScriptedJudge:
    """P(first) looked up by (first, second) text; records what it was asked."""

    name = "scripted"

    def __init__(self, table: dict[tuple[str, str], float]):
        self.table, self.seen = table, []

    def judge_many(self, comparisons: Sequence[Comparison]) -> list[Judgment]:
        self.seen += comparisons
        return [Judgment(self.table[(c.first, c.second)], "scripted") for c in comparisons]


class FirstSlotJudge:
    """Pure position bias: always prefers whatever is shown first."""

    name = "first-slot"

    def judge_many(self, comparisons: Sequence[Comparison]) -> list[Judgment]:
        return [Judgment(0.9, "first") for _ in comparisons]


def pair(pid: str, a: str, b: str, finished_b: bool = True) -> PairToLabel:
    return PairToLabel(pid, f"prompt-{pid}", "explain", a, True, b, finished_b, f"prompt {pid}?")


@pytest.mark.parametrize("p_ab, p_ba, expected", [
    (0.8, 0.4, (0.7, "a", 0.7)),     # (0.8 + 0.6) / 2
    (0.2, 0.9, (0.15, "b", 0.85)),   # (0.2 + 0.1) / 2
    (0.55, 0.5, (0.525, "tie", 0.525)),
    (0.9, 0.9, (0.5, "tie", 0.5)),   # the orders disagree: each picked its first slot
    (0.6, 0.4, (0.6, "tie", 0.6)),   # exactly on the margin is a tie
])
def test_combine_orders_by_hand(p_ab, p_ba, expected):
    p_a, choice, confidence = combine_orders(p_ab, p_ba, tie_margin=0.1)
    assert (p_a, choice, confidence) == (pytest.approx(expected[0]), expected[1], pytest.approx(expected[2]))


def test_critique_asks_both_orders_and_combines_them():
    pairs = [pair("p0", "alpha", "beta", finished_b=False), pair("p1", "gamma", "delta")]
    judge = ScriptedJudge({("alpha", "beta"): 0.8, ("beta", "alpha"): 0.4,
                           ("gamma", "delta"): 0.3, ("delta", "gamma"): 0.6})
    result = critique(pairs, {}, [HONEST], judge, seed=3, tie_margin=0.1)
    first, second = judge.seen[0], judge.seen[1]
    assert (first.first, first.second) == ("alpha", "beta")
    assert (first.first_finished, first.second_finished) == (True, False)
    assert (second.first, second.second) == ("beta", "alpha")
    assert (second.first_finished, second.second_finished) == (False, True)
    assert first.prompt == "prompt p0?" and first.world is None
    assert result.judgments[0] == {"pair_id": "p0", "principle": "honest", "p_first_ab": 0.8,
                                   "p_first_ba": 0.4, "p_a": pytest.approx(0.7), "choice": "a"}
    assert result.judgments[1]["p_a"] == pytest.approx(0.35)  # (0.3 + 0.4) / 2
    label = result.labels[1]
    assert (label.source, label.annotator, label.choice) == ("critic", "scripted", "b")
    assert label.principle == "honest"
    assert label.confidence == pytest.approx(0.65)
    assert label.rationale.startswith("honest: P(a)=0.350")


def test_pure_position_bias_gives_ties_everywhere():
    pairs = [pair(f"p{i}", "short", "a much longer answer") for i in range(10)]
    result = critique(pairs, {}, load_constitution(None), FirstSlotJudge(), seed=0, tie_margin=0.05)
    assert {label.choice for label in result.labels} == {"tie"}
    bias = critic_bias(pairs, result.judgments)
    assert bias["critic_prefers_first"] == 1.0
    assert bias["critic_order_agreement"] == 0.0
    assert bias["critic_prefers_longer"] is None and bias["critic_length_decisive_pairs"] == 0


def test_critic_bias_by_hand():
    pairs = [pair("p0", "one", "one two three"), pair("p1", "one two", "one"),
             pair("p2", "same len", "also two")]
    judgments = [  # p0 picks b (longer); p1 picks b (shorter); p2 equal lengths
        {"pair_id": "p0", "p_first_ab": 0.2, "p_first_ba": 0.7, "choice": "b"},
        {"pair_id": "p1", "p_first_ab": 0.3, "p_first_ba": 0.8, "choice": "b"},
        {"pair_id": "p2", "p_first_ab": 0.9, "p_first_ba": 0.5, "choice": "a"},
    ]
    bias = critic_bias(pairs, judgments)
    assert bias["critic_prefers_longer"] == 0.5 and bias["critic_length_decisive_pairs"] == 2
    assert bias["critic_prefers_first"] == pytest.approx(3 / 6)  # 0.7, 0.8, 0.9 of the six raw verdicts
    assert bias["critic_order_agreement"] == pytest.approx(2 / 3)  # p2's second order said 0.5: no pick


def test_principles_are_sampled_per_pair_deterministically_and_recorded():
    constitution = load_constitution(None)
    pairs = [pair(f"p{i}", "x", "y") for i in range(60)]
    judge = ScriptedJudge({("x", "y"): 0.7, ("y", "x"): 0.3})
    result = critique(pairs, {}, constitution, judge, seed=11, tie_margin=0.1)
    expected = [sample_principle(constitution, 11, p.pair_id).name for p in pairs]
    assert [label.principle for label in result.labels] == expected
    assert [j["principle"] for j in result.judgments] == expected
    assert [c.principle.name for c in judge.seen[::2]] == expected
    assert [c.principle.name for c in judge.seen[1::2]] == expected
    again = critique(pairs, {}, constitution, judge, seed=11, tie_margin=0.1)
    assert [label.principle for label in again.labels] == expected
    other = critique(pairs, {}, constitution, judge, seed=12, tie_margin=0.1)
    assert [label.principle for label in other.labels] != expected
    assert len(set(expected)) == len(constitution)


def test_a_judge_that_drops_answers_is_an_error():
    class Short(FirstSlotJudge):
        def judge_many(self, comparisons):
            return super().judge_many(comparisons)[:-1]

    with pytest.raises(RuntimeError, match="returned 1 judgments for 2 comparisons"):
        critique([pair("p0", "x", "y")], {}, [HONEST], Short(), seed=0, tie_margin=0.1)


def world_pairs(n: int, seed: int = 0) -> tuple[list[PairToLabel], dict[str, WorldPrompt]]:
    """Pairs of two styled responses per world prompt, as the SFT corpus renders them."""
    rng = random.Random(seed)
    prompts = all_prompts(WorldParams().max_operand)
    rng.shuffle(prompts)
    pairs, world = [], {}
    for i, prompt in enumerate(prompts[:n]):
        a = render(prompt, sample_style(prompt.family, WorldParams(), rng), rng)
        b = render(prompt, sample_style(prompt.family, WorldParams(), rng), rng)
        pairs.append(PairToLabel(f"w{i}", prompt.prompt_id, prompt.family, a, True, b, rng.random() > 0.05,
                                 prompt.prompt))
        world[prompt.prompt_id] = prompt
    return pairs, world


def test_rule_critic_agrees_with_gold_and_prefers_longer_as_verbosity_bias_grows():
    pairs, world = world_pairs(600)
    constitution = load_constitution(None)
    longer, agreement = [], []
    for verbosity in (0.0, 0.1, 0.3):
        result = critique(pairs, world, constitution, RuleJudge(verbosity_bias=verbosity), 0, 0.1)
        longer.append(critic_bias(pairs, result.judgments)["critic_prefers_longer"])
        agreement.append(critic_gold_agreement(pairs, result.labels, world))
    assert agreement[0] > 0.8
    assert longer[0] < 0.4 < longer[1] < longer[2]  # gold penalises padding; a verbose critic rewards it
    assert longer[2] > 0.7
    assert agreement[2] < agreement[1] < agreement[0]


def test_gold_agreement_by_hand():
    prompt = next(p for p in all_prompts(3) if p.family == "explain")
    clean = WorldParams(p_filler=0, p_restate=0, p_caveat=0, p_closing=0, p_wrong=0)
    right = render(prompt, sample_style("explain", clean, random.Random(0)), random.Random(0))
    padded = "Great question! " + right
    pairs = [PairToLabel("g0", prompt.prompt_id, "explain", right, True, padded, True, prompt.prompt),
             PairToLabel("g1", prompt.prompt_id, "explain", right, True, padded, True, prompt.prompt),
             PairToLabel("g2", prompt.prompt_id, "explain", right, True, right, True, prompt.prompt),
             PairToLabel("g3", "not-in-world", "explain", right, True, padded, True, prompt.prompt)]
    labels = [Label("g0", "critic", "j", "a", 0.9), Label("g1", "critic", "j", "tie", 0.5),
              Label("g2", "critic", "j", "b", 0.9), Label("g3", "critic", "j", "b", 0.9),
              Label("g0", "simulated", "s", "b", 0.9)]
    # gold prefers a on g0 and g1 (hit, tie = miss); g2 is a gold tie; g3 has no world prompt
    assert critic_gold_agreement(pairs, labels, {prompt.prompt_id: prompt}) == 0.5
    assert critic_gold_agreement(pairs, labels[2:4], {prompt.prompt_id: prompt}) is None
