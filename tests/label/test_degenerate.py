"""Degenerate labeler output: (nearly) all ties, always the response shown first, one principle."""
from __future__ import annotations

from prefpipe.label.degenerate import DEGENERATE_SHARE, MIN_COUNT, degeneracy_report
from prefpipe.label.types import Label


def human(n: int, choice: str, shown_order: str) -> Label:
    return Label(f"p{n}", "human", "ann1", choice, 1.0, shown_order=shown_order)


def critic(n: int, choice: str, principle: str) -> Label:
    return Label(f"p{n}", "critic", "http:m", choice, 0.8, principle=principle)


def test_a_human_who_always_clicks_the_first_shown_response_is_flagged():
    # first shown: a when shown 'ab', b when 'ba'; the choice relative to a/b varies, the position not
    labels = [human(n, "a" if n % 2 else "b", "ab" if n % 2 else "ba") for n in range(MIN_COUNT)]
    metrics, warnings = degeneracy_report(labels, [])
    assert metrics["first_shown_share_human"] == 1.0 and metrics["tie_share_human"] == 0.0
    assert warnings == [f"human: {MIN_COUNT} of {MIN_COUNT} decisive labels (100%) choose the response "
                        "shown first"]
    balanced = [human(n, "a", "ab" if n % 2 else "ba") for n in range(MIN_COUNT)]
    assert degeneracy_report(balanced, [])[0]["first_shown_share_human"] == 0.5


def test_one_principle_for_every_pair_is_flagged_and_a_mix_is_not():
    same = [critic(n, "a" if n % 2 else "b", "helpful") for n in range(MIN_COUNT)]
    metrics, warnings = degeneracy_report(same, [])
    assert metrics["top_principle_share_critic"] == 1.0 and metrics["degenerate_warnings"] == 1
    assert "one principle, 'helpful'" in warnings[0] and "label.critic.constitution" in warnings[0]
    mixed = [critic(n, "a", ("helpful", "honest", "harmless")[n % 3]) for n in range(MIN_COUNT)]
    assert degeneracy_report(mixed, [])[1] == []


def test_nearly_all_ties_warn_above_the_share_and_few_labels_never_warn():
    n = 100
    ties = int(DEGENERATE_SHARE * n)  # exactly the share: not above it
    labels = [critic(i, "tie" if i < ties else "a", str(i % 5)) for i in range(n)]
    assert degeneracy_report(labels, [])[1] == []
    labels = [critic(i, "both_bad" if i <= ties else "a", str(i % 5)) for i in range(n)]
    metrics, warnings = degeneracy_report(labels, [])
    assert metrics["tie_share_critic"] == (ties + 1) / n and len(warnings) == 1
    few = [critic(i, "tie", str(i % 5)) for i in range(MIN_COUNT - 1)]
    metrics, warnings = degeneracy_report(few, [])
    assert metrics["tie_share_critic"] == 1.0 and warnings == []


def test_raw_critic_judgments_give_the_first_shown_share():
    judgments = [{"pair_id": f"p{i}", "p_first_ab": 0.9, "p_first_ba": 0.9 if i % 2 else 0.5}
                 for i in range(MIN_COUNT)]
    metrics, warnings = degeneracy_report([], judgments)
    assert metrics["first_shown_share_critic"] == 1.0  # undecided (0.5) verdicts are not counted
    assert len(warnings) == 1 and "shown first in 30 of 30 single-order judgments" in warnings[0]
