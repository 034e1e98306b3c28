"""Cohen's κ, Krippendorff's α and majority aggregation against hand-computed values."""
from __future__ import annotations

import math

import pytest

from prefpipe.label.agreement import (
    aggregate,
    agreement_report,
    cohen_kappa,
    decided,
    is_majority,
    krippendorff_alpha,
    majority_annotator,
    pairwise_kappa,
)
from prefpipe.label.types import Label


def lab(pair_id: str, annotator: str, choice: str) -> Label:
    return Label(pair_id, "human", annotator, choice, 1.0)


def test_cohen_kappa_by_hand():
    # p_o = 4/5; marginals a:3,b:2 and a:2,b:3 -> p_e = (3*2 + 2*3)/25 = 0.48; κ = 0.32/0.52
    assert cohen_kappa(list("aabba"), list("abbba")) == pytest.approx(0.32 / 0.52, abs=1e-12)


def test_cohen_kappa_limits():
    assert cohen_kappa(list("abab"), list("abab")) == 1.0
    # systematic disagreement on balanced marginals: p_o = 0, p_e = 0.5 -> κ = -1
    assert cohen_kappa(list("abab"), list("baba")) == -1.0
    # chance-level: independent marginals agreeing exactly at p_e -> 0
    assert cohen_kappa(list("aabb"), list("abab")) == pytest.approx(0.0, abs=1e-12)
    assert cohen_kappa(list("aaa"), list("aaa")) is None  # one category: undefined
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError, match="different numbers"):
        cohen_kappa(["a"], ["a", "b"])


def test_cohen_kappa_four_categories():
    first = ["a", "b", "tie", "both_bad", "a", "b"]
    second = ["a", "b", "tie", "a", "a", "tie"]
    observed = 4 / 6
    # first: a2 b2 tie1 bb1; second: a3 b1 tie2 -> p_e = (2*3 + 2*1 + 1*2 + 1*0) / 36
    expected = 10 / 36
    assert cohen_kappa(first, second) == pytest.approx((observed - expected) / (1 - expected), abs=1e-12)


def test_krippendorff_alpha_small_by_hand():
    # o_aa = 2, o_ab = o_ba = 1, o_bb = 3; n_a = 3, n_b = 4, n = 7
    # D_o = 2/7, D_e = (3*4 + 4*3)/(7*6) = 4/7 -> α = 0.5
    units = {"1": ["a", "a"], "2": ["a", "b"], "3": ["b", "b", "b"], "4": ["a"]}
    assert krippendorff_alpha(units) == pytest.approx(0.5, abs=1e-12)


def test_krippendorff_alpha_reference_example():
    """The nominal example of Krippendorff (2011), 4 observers x 12 units with gaps: α = 0.743."""
    observers = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = {str(u): [str(obs[u]) for obs in observers if obs[u] is not None] for u in range(12)}
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_perfect_and_degenerate():
    assert krippendorff_alpha({"1": ["a", "a"], "2": ["b", "b", "b"]}) == 1.0
    assert krippendorff_alpha({"1": ["a", "a"], "2": ["a", "a"]}) is None
    assert krippendorff_alpha({"1": ["a"]}) is None


def test_two_raters_alpha_close_to_kappa_for_large_samples():
    first = list("ab" * 50 + "a" * 20)
    second = list("ab" * 40 + "ba" * 10 + "a" * 20)
    units = {str(i): [x, y] for i, (x, y) in enumerate(zip(first, second, strict=True))}
    kappa, alpha = cohen_kappa(first, second), krippendorff_alpha(units)
    # α corrects κ by a small-sample factor; with n = 240 values they agree to ~1%
    assert math.isclose(kappa, alpha, rel_tol=0.02)


def test_pairwise_kappa_uses_shared_items_only():
    labels = [lab("p1", "x", "a"), lab("p2", "x", "b"), lab("p3", "x", "a"),
              lab("p1", "y", "a"), lab("p2", "y", "b"),
              lab("p3", "z", "b")]
    kappas = pairwise_kappa(labels)
    assert set(kappas) == {"x|y", "x|z"}
    assert kappas["x|y"] == {"kappa": 1.0, "n": 2}
    assert kappas["x|z"] == {"kappa": 0.0, "n": 1}  # p_o = 0 and p_e = 0


def test_aggregate_majority_ties_and_both_bad():
    labels = [lab("p1", "x", "a"), lab("p1", "y", "a"), lab("p1", "z", "b"),
              lab("p2", "x", "a"), lab("p2", "y", "b"),
              lab("p3", "x", "both_bad"), lab("p3", "y", "both_bad"), lab("p3", "z", "a"),
              lab("p4", "x", "b")]
    result = aggregate(labels)
    assert (result["p1"].choice, result["p1"].confidence) == ("a", pytest.approx(2 / 3))
    assert (result["p2"].choice, result["p2"].confidence) == ("tie", 0.5)
    assert result["p3"].choice == "both_bad"
    assert result["p4"] is labels[-1]
    assert result["p1"].annotator == "majority-of-3" and "a 2" in result["p1"].rationale


def test_majority_marker_is_made_and_read_here():
    votes = [lab("p1", "x", "a"), lab("p1", "y", "a")]
    majority = aggregate(votes)["p1"]
    assert majority.annotator == majority_annotator(2) == "majority-of-2"
    assert is_majority(majority) and not any(is_majority(v) for v in votes)


def test_decided_counts_the_final_label_and_every_vote_of_its_majority():
    votes = [lab("p1", "x", "a"), lab("p1", "y", "a"), lab("p1", "z", "b")]
    majority = aggregate(votes)["p1"]
    assert all(decided(v, majority) for v in votes)  # the outvoted label took part in the vote too
    single = lab("p2", "x", "a")
    assert decided(single, single) and not decided(lab("p2", "x", "a"), single)  # the same object only
    other_source = Label("p1", "simulated", "sim-1", "a", 1.0)
    assert not decided(other_source, majority)  # a majority of humans is not decided by a simulated label
    assert not decided(single, None)


def test_agreement_report_weights_kappa_by_shared_items():
    labels = [lab("p1", "x", "a"), lab("p2", "x", "b"), lab("p1", "y", "a"), lab("p2", "y", "b"),
              lab("p3", "x", "a"), lab("p4", "x", "b"), lab("p5", "x", "a"), lab("p6", "x", "b"),
              lab("p3", "z", "b"), lab("p4", "z", "a"), lab("p5", "z", "b"), lab("p6", "z", "a")]
    report = agreement_report(labels, "human_")
    assert report["human_kappa"] == {"x|y": 1.0, "x|z": -1.0}
    assert report["human_kappa_mean"] == pytest.approx((1.0 * 2 - 1.0 * 4) / 6)
    assert report["human_pairs_multiply_labelled"] == 6


def test_agreement_is_measured_within_one_source():
    imported = Label("p1", "import", "import:file", "b", 1.0)
    with pytest.raises(ValueError, match=r"within one label source; got labels of \['human', 'import'\]"):
        agreement_report([lab("p1", "u1", "a"), lab("p1", "u2", "a"), imported])
    assert agreement_report([imported])["pairs_multiply_labelled"] == 0  # one source: measured


def test_imported_labels_never_count_as_an_annotator(tmp_path):
    """An imported file's labels, even imported as 'human', are in no agreement figure: not in
    human_labels, nor the admin page's progress, κ and α, while people's answers to the same
    pairs are."""
    import json

    from prefpipe.annotate.annotation import add_annotator, human_labels, next_task, submit
    from prefpipe.annotate.app.admin import admin_view
    from prefpipe.annotate.human_queue import queue_pairs
    from prefpipe.data.interchange import import_preferences
    from prefpipe.store import Store

    store = Store(tmp_path / "s.duckdb", lock_timeout_s=10)
    rows = [{"prompt": f"q{n}", "chosen": f"good {n}", "rejected": f"bad {n}"} for n in range(6)]
    (tmp_path / "told_human.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    (tmp_path / "plain.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[4:]))
    told_human = import_preferences(store, tmp_path / "told_human.jsonl", "trl", source="human")
    import_preferences(store, tmp_path / "plain.jsonl", "trl")
    for annotator in ("ann1", "ann2"):
        add_annotator(store, annotator)
    assert queue_pairs(store, told_human.pair_ids, ["ann1", "ann2"], 2, seed=0) == 8
    for annotator, contrary in (("ann1", set()), ("ann2", {"q0", "q1"})):  # ann2 prefers 'bad' twice
        while (task := next_task(store, annotator)) is not None:
            picks_good = task.prompt not in contrary
            submit(store, annotator, task.task_id, "first" if task.first.startswith("good") == picks_good
                   else "second", None)
    people = human_labels(store, include_gold=True)
    assert sorted((la.annotator, la.choice) for la in people) == [("ann1", "a")] * 4 + [("ann2", "a")] * 2 + \
        [("ann2", "b")] * 2
    view = admin_view(store, tmp_path / "no_metrics.json")
    assert [row["annotator"] for row in view["progress"]] == ["ann1", "ann2"]
    assert list(view["kappas"]) == ["ann1|ann2"] and view["overlapping_pairs"] == 4
    units = {}
    for label in people:
        units.setdefault(label.pair_id, []).append(label.choice)
    assert view["alpha"] == pytest.approx(krippendorff_alpha(units)) == agreement_report(people)["alpha"]
    everything = store.query("SELECT pair_id, choice FROM labels").to_pylist()  # the imports' too
    assert len(everything) == 8 + 6
    with_imports = {}
    for row in everything:
        with_imports.setdefault(row["pair_id"], []).append(row["choice"])
    assert krippendorff_alpha(with_imports) != pytest.approx(view["alpha"])  # they would have moved it
