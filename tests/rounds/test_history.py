"""Earlier rounds' pairs, human labels that arrived late, and the rounds the policy trains on."""
from prefpipe.rounds.history import preference_rows, select_rounds, with_human_labels


def pair(pair_id: str, choice: str | None, round_number: int = 1) -> dict:
    return {"round": round_number, "pair_id": pair_id, "prompt_id": "p", "prompt": "q", "category": "c",
            "response_a": "A", "finished_a": True, "response_b": "B", "finished_b": False,
            "choice": choice, "source": "critic" if choice else None, "confidence": 0.7}


def test_a_human_majority_overrides_the_machine_label():
    (row,) = with_human_labels([pair("x", "a")], {"x": ["b", "b", "a"]})
    assert (row["choice"], row["source"]) == ("b", "human")
    assert abs(row["confidence"] - 2 / 3) < 1e-12


def test_a_split_human_vote_or_ties_keep_the_machine_label():
    rows = with_human_labels([pair("x", "a"), pair("y", "a")], {"x": ["a", "b"], "y": ["tie"]})
    assert [(r["choice"], r["source"]) for r in rows] == [("a", "critic"), ("a", "critic")]


def test_a_pair_left_undecided_gets_its_late_human_label():
    (row,) = with_human_labels([pair("x", None)], {"x": ["a"]})
    assert (row["choice"], row["source"], row["confidence"]) == ("a", "human", 1.0)


def test_preference_rows_orient_chosen_and_rejected_and_drop_undecided():
    rows = preference_rows([pair("x", "b", 2), pair("y", "tie"), pair("z", None)])
    assert len(rows) == 1
    assert (rows[0]["chosen"], rows[0]["rejected"], rows[0]["chosen_finished"], rows[0]["round"]) == \
        ("B", "A", False, 2)


PREFS = [{"pair_id": str(r), "round": r} for r in (1, 2, 3, 3)] + [{"pair_id": "imported", "round": None}]


def test_select_rounds_all_latest_and_window():
    ids = lambda data, window=2: [p["pair_id"] for p in select_rounds(PREFS, data, window, 3)]  # noqa: E731
    assert ids("all") == ["1", "2", "3", "3", "imported"]
    assert ids("latest") == ["3", "3", "imported"]
    assert ids("window", 2) == ["2", "3", "3", "imported"]
    assert ids("window", 5) == ids("all")
