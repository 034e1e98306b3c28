"""From labels to (chosen, rejected) rows, and label agreement with gold."""
from __future__ import annotations

import pytest

from prefpipe.label.preferences import label_report, to_preferences
from prefpipe.label.route import Routed
from prefpipe.label.types import Label, PairToLabel
from prefpipe.world.prompts import all_prompts

ADD = next(p for p in all_prompts(5) if p.prompt == "What is 3 plus 4?")


def make_pair(pair_id: str, a: str, b: str, finished_a=True, finished_b=False) -> dict:
    return {"pair_id": pair_id, "prompt_id": ADD.prompt_id, "prompt": ADD.prompt,
            "category": "arithmetic", "response_a": a, "finished_a": finished_a,
            "response_b": b, "finished_b": finished_b}


PAIRS = [make_pair("p-a", "A1", "B1"), make_pair("p-b", "A2", "B2"),
         make_pair("p-tie", "A3", "B3"), make_pair("p-bad", "A4", "B4"),
         make_pair("p-none", "A5", "B5")]
LABELS = {
    "p-a": Label("p-a", "verifier", "verifier:arithmetic", "a", 1.0),
    "p-b": Label("p-b", "simulated", "sim-2", "b", 0.75),
    "p-tie": Label("p-tie", "simulated", "sim-1", "tie", 1.0),
    "p-bad": Label("p-bad", "simulated", "sim-1", "both_bad", 1.0),
}


def test_maps_a_and_b_to_chosen_and_rejected_and_drops_the_rest():
    prefs = to_preferences(PAIRS, LABELS)
    assert [p["pair_id"] for p in prefs] == ["p-a", "p-b"]
    a, b = prefs
    assert (a["chosen"], a["chosen_finished"], a["rejected"], a["rejected_finished"]) == \
        ("A1", True, "B1", False)
    assert (b["chosen"], b["chosen_finished"], b["rejected"], b["rejected_finished"]) == \
        ("B2", False, "A2", True)
    assert a["source"] == "verifier" and b["source"] == "simulated"
    assert b["confidence"] == 0.75
    assert a["prompt_id"] == ADD.prompt_id and a["prompt"] == ADD.prompt
    assert a["category"] == "arithmetic"


def to_label(pair: dict) -> PairToLabel:
    return PairToLabel(pair["pair_id"], pair["prompt_id"], pair["category"], pair["response_a"],
                       pair["finished_a"], pair["response_b"], pair["finished_b"], pair["prompt"])


def test_label_report_counts_every_label_and_scores_the_final_ones_against_gold():
    pairs = [make_pair("right", "The answer is 7.", "The answer is 8.", True, True),
             make_pair("wrong", "The answer is 7.", "The answer is 8.", True, True),
             make_pair("tie", "The answer is 7.", "3 + 4 = 7.", True, True)]
    final = {"right": Label("right", "verifier", "v", "a", 1.0),
             "wrong": Label("wrong", "simulated", "majority-of-2", "b", 1.0),
             "tie": Label("tie", "simulated", "sim-1", "a", 0.6)}  # gold tie: not scored
    individual = [final["right"], Label("wrong", "simulated", "sim-1", "b", 0.6),
                  Label("wrong", "simulated", "sim-2", "b", 0.6), final["tie"],
                  Label("right", "critic", "rule", "tie", 0.5)]
    report = label_report([to_label(p) for p in pairs], Routed(final=final, labels=individual),
                          {ADD.prompt_id: ADD})
    assert report["count_verifier_a"] == 1 and report["count_simulated_b"] == 2
    assert report["count_simulated_a"] == 1 and report["count_critic_tie"] == 1
    assert (report["count_simulated"], report["count_verifier"], report["count_critic"]) == (3, 1, 1)
    assert report["gold_agreement_verifier"] == 1.0
    assert report["gold_agreement_simulated"] == 0.0
    assert "gold_agreement_critic" not in report  # the critic's tie decided nothing
    assert report["gold_agreement"] == pytest.approx(0.5)
