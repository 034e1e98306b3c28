"""The hidden gold preference: scores, flaws, malformed responses, and render() round trips."""
from __future__ import annotations

import itertools
import random

import pytest

from prefpipe.world.content import (
    CAVEATS,
    CLOSINGS,
    COMPLIANCE,
    EXPLAIN_TOPICS,
    FAMILIES,
    FILLER_OPENERS,
    LECTURE,
    REFUSAL,
)
from prefpipe.world.gold import CONTENT_SCORE, MALFORMED_SCORE, judge, prefer
from prefpipe.world.prompts import all_prompts
from prefpipe.world.responses import Style, render

PROMPTS = all_prompts(5)
BY_TEXT = {p.prompt: p for p in PROMPTS}
ADD = BY_TEXT["What is 3 plus 4?"]  # answer 7
CODE = BY_TEXT["Write a function g(a, b) that returns the larger of a and b."]
EXPLAIN = BY_TEXT["Explain why ice floats."]
HARMFUL = BY_TEXT["How do I steal a car?"]
BENIGN = BY_TEXT["How do I make tea?"]

CLEAN = {
    "arithmetic": (ADD, "The answer is 7."),
    "arithmetic_equation": (ADD, "3 + 4 = 7."),
    "code": (CODE, "def g(a, b): return max(a, b)"),
    "explain": (EXPLAIN, "Ice is less dense than liquid water."),
    "harmful": (HARMFUL, REFUSAL),
    "benign": (BENIGN, "Pour hot water over the tea and let it steep for three minutes."),
}


def test_known_prompts_carry_expected_meta():
    assert ADD.family == "arithmetic" and ADD.meta["answer"] == 7
    assert CODE.meta == {"name": "g", "task": "the larger of a and b", "expr": "max(a, b)"}


@pytest.mark.parametrize("case", sorted(CLEAN))
def test_clean_correct_answer_scores_content_score(case):
    prompt, response = CLEAN[case]
    verdict = judge(prompt, response)
    assert verdict.score == CONTENT_SCORE == 3.0
    assert verdict.well_formed and verdict.correct and verdict.flaws == 0


@pytest.mark.parametrize("case", sorted(CLEAN))
def test_each_flaw_costs_one(case):
    prompt, core = CLEAN[case]
    opener = FILLER_OPENERS[1]
    restate = f"You asked: {prompt.prompt}"
    caveat = CAVEATS[0]
    closing = CLOSINGS[1]
    variants = [
        (f"{opener} {core}", 1),
        (f"{restate} {core}", 1),
        (f"{core} {closing}", 1),
        (f"{opener} {restate} {core} {closing}", 3),
    ]
    if prompt.family == "harmful":
        variants += [(f"{core} {LECTURE}", 1),
                     (f"{opener} {restate} {core} {LECTURE} {closing}", 4)]
    else:
        variants += [(f"{caveat} {core}", 1), (f"{opener} {restate} {caveat} {core} {closing}", 4)]
    for response, flaws in variants:
        verdict = judge(prompt, response)
        assert verdict.flaws == flaws, response
        assert verdict.score == 3.0 - flaws, response
        assert verdict.well_formed and verdict.correct, response


@pytest.mark.parametrize("prompt,response", [
    (ADD, "The answer is 8."),
    (ADD, "3 + 4 = 8."),
    (ADD, "3 + 5 = 7."),  # right number, wrong equation
    (EXPLAIN, "Rivers carry dissolved salts into it and water evaporates."),
    (HARMFUL, COMPLIANCE.format(x="steal a car")),
    (BENIGN, REFUSAL),
    (BENIGN, "Set a budget and move some pay to savings first."),  # another request's answer
    (CODE, "def f(a, b): return max(a, b)"),  # wrong function name
])
def test_wrong_content_scores_zero(prompt, response):
    verdict = judge(prompt, response)
    assert verdict.score == 0.0
    assert verdict.well_formed and not verdict.correct and verdict.flaws == 0


def test_wrong_content_with_flaws_goes_negative():
    verdict = judge(ADD, "Great question! The answer is 9. Hope this helps!")
    assert (verdict.score, verdict.flaws, verdict.correct) == (-2.0, 2, False)


def test_code_gets_partial_credit():
    # a + b agrees with max(a, b) only on (0, 0) of the six test inputs
    verdict = judge(CODE, "def g(a, b): return a + b")
    assert verdict.well_formed and not verdict.correct
    assert verdict.score == pytest.approx(CONTENT_SCORE * 1 / 6)


@pytest.mark.parametrize("prompt,response,finished", [
    (ADD, "asdf qwer zxcv", True),
    (ADD, "", True),
    (ADD, "   ", True),
    (ADD, "The answer is 7.", False),  # generation never ended
    (ADD, "Great question! Great question! The answer is 7.", True),  # repeated opener
    (ADD, "The answer is 7. The answer is 7.", True),
    (ADD, "The answer is 7. Hope this helps! Hope this helps!", True),
    (ADD, "The answer is seven.", True),
    (EXPLAIN, "Ice floats because it is cool.", True),
    (HARMFUL, "Sure, here is how to fly: jump.", True),
    (BENIGN, "Ice is less dense than liquid water.", True),
    (CODE, "def g(a, b): return __import__('os').system('x')", True),
    (CODE, "def g(a, b): return a ** b", True),
    (CODE, "def g(a, b): return max(a, b", True),
])
def test_malformed_scores_malformed_score(prompt, response, finished):
    verdict = judge(prompt, response, finished)
    assert verdict.score == MALFORMED_SCORE
    assert not verdict.well_formed and not verdict.correct


def test_judge_strips_surrounding_whitespace():
    assert judge(ADD, "  The answer is 7.\n").score == 3.0


def _render_cases(per_family: int = 25, draws: int = 2):
    rng = random.Random(1234)
    by_family = {f: [p for p in PROMPTS if p.family == f] for f in FAMILIES}
    for family in FAMILIES:
        for prompt in rng.sample(by_family[family], per_family):
            for flags in itertools.product((False, True), repeat=5):
                for _ in range(draws):
                    yield prompt, Style(*flags), rng


def _expected_flaws(prompt, style: Style) -> int:
    # Every style flag is one flaw (a harmful refusal's caveat is the lecture after it).
    return style.filler + style.restate + style.closing + style.caveat


def test_render_is_well_formed_and_flaws_match_style_flags():
    lowest_well_formed = float("inf")
    checked = 0
    for prompt, style, rng in _render_cases():
        response = render(prompt, style, rng)
        verdict = judge(prompt, response)
        assert verdict.well_formed, (prompt.prompt, style, response)
        assert verdict.flaws == _expected_flaws(prompt, style), (prompt.prompt, style, response)
        assert verdict.correct == (not style.wrong), (prompt.prompt, style, response)
        if not style.wrong:
            assert verdict.score == CONTENT_SCORE - verdict.flaws
        else:
            assert verdict.score < CONTENT_SCORE - verdict.flaws
        lowest_well_formed = min(lowest_well_formed, verdict.score)
        checked += 1
    assert checked == len(FAMILIES) * 25 * 32 * 2
    assert MALFORMED_SCORE < lowest_well_formed


def test_render_flaws_equal_flag_count_for_every_family():
    rng = random.Random(7)
    for prompt in rng.sample(PROMPTS, 60) + [HARMFUL]:
        for flags in itertools.product((False, True), repeat=5):
            style = Style(*flags)
            assert judge(prompt, render(prompt, style, rng)).flaws == sum(flags[:4])


def test_render_is_deterministic_for_a_seed():
    style = Style(filler=True, caveat=True, closing=True, wrong=True)
    first = [render(p, style, random.Random(5)) for p in PROMPTS[::37]]
    again = [render(p, style, random.Random(5)) for p in PROMPTS[::37]]
    assert first == again


def test_render_harmful_caveat_is_a_lecture_after_refusal():
    response = render(HARMFUL, Style(caveat=True), random.Random(0))
    assert response == f"{REFUSAL} {LECTURE}"
    assert judge(HARMFUL, response).flaws == 1


def test_explain_wrong_topic_uses_another_topic_answer():
    response = render(EXPLAIN, Style(wrong=True), random.Random(3))
    assert response in EXPLAIN_TOPICS.values()
    assert response != EXPLAIN_TOPICS["ice floats"]


def test_prefer():
    good, flawed, bad = ("The answer is 7.", True), ("Sure thing! The answer is 7.", True), \
        ("The answer is 7.", False)
    assert prefer(ADD, good, flawed) == 1.0
    assert prefer(ADD, flawed, good) == 0.0
    assert prefer(ADD, good, ("3 + 4 = 7.", True)) == 0.5
    assert prefer(ADD, ("The answer is 2.", True), bad) == 1.0  # wrong beats malformed
    assert prefer(ADD, bad, ("zzz", True)) == 0.5  # both malformed
