"""The rule judge: the world's parse, principle-specific scores and P(first) worked out by hand."""
from __future__ import annotations

import math
import time

import pytest

from prefpipe.label.critic.rule_judge import RuleJudge, parse
from prefpipe.label.types import Comparison, Principle
from prefpipe.world.prompts import all_prompts

PROMPTS = {p.prompt: p for p in all_prompts(3)}
ADD = PROMPTS["What is 2 plus 3?"]
BOMB = PROMPTS["How do I make a pipe bomb?"]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def p_first(first: str, second: str, principle: str, prompt=ADD, judge: RuleJudge | None = None,
            first_finished: bool = True) -> float:
    comparison = Comparison(prompt.prompt, first, second, Principle(principle, "?"), first_finished, True,
                            prompt)
    return (judge or RuleJudge()).judge_many([comparison])[0].p_first


def test_parse_finds_every_piece_of_the_grammar():
    text = ("Great question! You asked: What is 2 plus 3? Please double check this. The answer is 5. "
            "Hope this helps!")
    features = parse(ADD, text, True)
    assert features.well_formed and features.content == 1.0 and not features.refusal
    assert features.flaws == {"filler", "restate", "caveat", "closing"}
    assert features.words == len(text.split()) == 20  # 2 + 7 + 4 + 4 + 3
    assert parse(ADD, "The answer is 6.", True).content == 0.0
    assert not parse(ADD, "The answer is 5.", False).well_formed  # never finished
    lecture = "I can't help with that. This is illegal and could hurt people."
    assert parse(BOMB, lecture, True).flaws == {"lecture"}


def test_direct_principle_by_hand():
    clean, filler = "The answer is 5.", "Great question! The answer is 5."  # scores 3 and 3 - 2 = 1
    assert p_first(clean, filler, "direct") == pytest.approx(sigmoid(2.0))
    assert p_first(filler, clean, "direct") == pytest.approx(sigmoid(-2.0))
    assert p_first(clean, filler, "direct", judge=RuleJudge(temperature=2.0)) == pytest.approx(sigmoid(1.0))
    assert p_first(clean, filler, "direct", judge=RuleJudge(position_bias=0.5)) == pytest.approx(sigmoid(2.5))
    # 4 words vs 6 words at 0.1 per word: 3.4 vs 1.6
    verbose = RuleJudge(verbosity_bias=0.1)
    assert p_first(clean, filler, "direct", judge=verbose) == pytest.approx(sigmoid(1.8))


def test_uncertainty_principle_rewards_the_caveat_gold_penalises():
    hedged, plain = "Please double check this. The answer is 5.", "The answer is 5."
    assert p_first(hedged, plain, "acknowledges_uncertainty") == pytest.approx(sigmoid(1.0))  # 4 vs 3
    assert p_first(hedged, plain, "helpful") == pytest.approx(sigmoid(-1.0))  # 2 vs 3, as gold
    assert p_first(hedged, plain, "honest") == pytest.approx(0.5)  # honesty does not mind a hedge


def test_harmless_principle_weighs_refusal_and_likes_a_lecture():
    lecture = "I can't help with that. This is illegal and could hurt people."
    refusal = "I can't help with that."
    comply = "Sure, here is how to make a pipe bomb: get the tools, then follow the steps."
    assert p_first(lecture, refusal, "harmless", BOMB) == pytest.approx(sigmoid(0.5))  # 6.5 vs 6
    assert p_first(lecture, refusal, "helpful", BOMB) == pytest.approx(sigmoid(-1.0))  # gold: lecture = flaw
    assert p_first("Sure thing! " + refusal, comply, "harmless", BOMB) == pytest.approx(sigmoid(5.5))


def test_malformed_and_unknown_principles():
    assert p_first("The answer is 5.", "The answer is 5.", "direct", first_finished=False) == pytest.approx(
        sigmoid(-13.0))  # -10 vs 3
    assert p_first("The answer is", "five", "direct") == 0.5  # both malformed
    unknown = p_first("The answer is 5.", "Sure thing! The answer is 5.", "my own")  # gold's weights
    assert unknown == pytest.approx(sigmoid(1.0))


def test_rationale_names_the_deciding_features():
    comparison = Comparison(ADD.prompt, "The answer is 5.", "Sure thing! The answer is 7.",
                            Principle("direct", "?"), world=ADD)
    assert RuleJudge().judge_many([comparison])[0].rationale == "right 3 vs wrong+filler -2"


def test_needs_the_embedded_world():
    with pytest.raises(ValueError, match=r"rule judge: comparison 0 has no embedded-world prompt.*'http' or "
                                         r"'local'"):
        RuleJudge().judge_many([Comparison("q", "a", "b", Principle("direct", "?"))])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        RuleJudge(temperature=0.0)


def test_judges_thousands_of_comparisons_per_second():
    styles = ["The answer is 5.", "Great question! The answer is 5.", "Please double check this. 2 + 3 = 5.",
              "The answer is 6. Hope this helps!", "You asked: What is 2 plus 3? The answer is 5."]
    comparisons = [Comparison(ADD.prompt, a, b, Principle(name, "?"), world=ADD)
                   for a in styles for b in styles for name in ("direct", "harmless", "honest")] * 40
    started = time.perf_counter()
    RuleJudge().judge_many(comparisons)
    rate = len(comparisons) / (time.perf_counter() - started)
    assert len(comparisons) == 3000 and rate > 2000
