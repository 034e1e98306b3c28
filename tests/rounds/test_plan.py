"""When a round is due and which prompts it samples (prefpipe/rounds/plan.py)."""
from prefpipe.rounds.plan import LabelsSeen, decide_round, round_prompts, round_seed

NO_LABELS = LabelsSeen(0, "empty")


def finished(number: int, status: str = "published", labels=NO_LABELS) -> dict:
    return {"round": number, "status": status, "labels_count": labels.count,
            "labels_digest": labels.digest}


def test_the_first_round_is_due_with_every_prompt_new():
    decision = decide_round(["p1", "p2", "p1"], set(), None, 0, NO_LABELS, iterations=1)
    assert (decision.due, decision.round, decision.new_prompt_ids) == (True, 1, ("p1", "p2"))


def test_nothing_new_after_the_last_iteration_is_not_due_and_says_why():
    decision = decide_round(["p1"], {"p1"}, finished(1), 1, NO_LABELS, iterations=1)
    assert not decision.due and decision.round == 1
    assert decision.reason.startswith("nothing new since round 1")
    assert "1 of rounds.iterations 1" in decision.reason


def test_iterations_left_make_a_round_due_on_the_same_prompts():
    decision = decide_round(["p1"], {"p1"}, finished(1), 1, NO_LABELS, iterations=3)
    assert (decision.due, decision.round, decision.new_prompt_ids) == (True, 2, ())
    assert "iteration 2 of rounds.iterations 3" in decision.reason


def test_new_prompts_in_the_source_make_a_round_due():
    decision = decide_round(["p1", "p2"], {"p1"}, finished(1), 1, NO_LABELS, iterations=1)
    assert decision.due and decision.new_prompt_ids == ("p2",) and "1 new prompts" in decision.reason


def test_new_human_labels_make_a_round_due_and_are_counted():
    now = LabelsSeen(5, "after")
    decision = decide_round(["p1"], {"p1"}, finished(1, labels=LabelsSeen(2, "before")), 1, now, 1)
    assert decision.due and decision.new_labels == 3 and "3 new human labels" in decision.reason


def test_a_rejected_round_counts_as_finished():
    decision = decide_round(["p1"], {"p1"}, finished(2, "rejected"), 2, NO_LABELS, iterations=2)
    assert not decision.due


def test_a_round_left_running_is_resumed_under_its_own_number():
    decision = decide_round(["p1", "p9"], {"p1"}, finished(2, "running"), 1, LabelsSeen(9, "x"), 1)
    assert (decision.due, decision.round, decision.resumed) == (True, 2, True)


ROWS = [{"prompt_id": f"p{i}"} for i in range(10)]


def test_without_new_prompts_a_round_samples_every_prompt_in_order():
    assert round_prompts(ROWS, (), 0.5, seed=0, round_number=2) == ROWS


def test_new_prompts_alone_without_replay():
    chosen = round_prompts(ROWS, ("p3", "p7"), 0.0, seed=0, round_number=2)
    assert [r["prompt_id"] for r in chosen] == ["p3", "p7"]


def test_replay_share_adds_old_prompts_to_that_share_reproducibly():
    chosen = round_prompts(ROWS, ("p3", "p7"), 0.5, seed=0, round_number=2)
    ids = [r["prompt_id"] for r in chosen]
    assert len(ids) == 4 and {"p3", "p7"} <= set(ids)
    assert ids == [r["prompt_id"] for r in round_prompts(ROWS, ("p3", "p7"), 0.5, 0, 2)]
    assert ids == sorted(ids, key=lambda p: int(p[1:]))  # the source's order


def test_round_one_keeps_the_seed_and_later_rounds_change_it():
    assert round_seed(7, 1) == 7
    assert len({round_seed(7, r) for r in range(1, 6)}) == 5
