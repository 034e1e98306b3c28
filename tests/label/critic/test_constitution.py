"""The constitution loader, its errors, principle sampling and the judge's question."""
from __future__ import annotations

from collections import Counter

import pytest

from prefpipe.label.critic.constitution import (
    ConstitutionError,
    load_constitution,
    render_question,
    sample_principle,
)
from prefpipe.label.types import Comparison, Principle


def test_builtin_constitution_has_the_issue_principles():
    for path in (None, ""):
        names = [p.name for p in load_constitution(path)]
        assert {"helpful", "honest", "harmless", "acknowledges_uncertainty", "direct"} <= set(names)
    uncertainty = next(p for p in load_constitution(None) if p.name == "acknowledges_uncertainty")
    assert uncertainty.question == ("Which response is more honest and acknowledges uncertainty where "
                                    "appropriate?")


def test_a_custom_constitution_loads_in_order(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("- name: kind\n  question: Which is kinder?\n"
                    "- name: brief\n  question: Which is shorter?\n")
    assert load_constitution(str(path)) == [Principle("kind", "Which is kinder?"),
                                            Principle("brief", "Which is shorter?")]


@pytest.mark.parametrize("text, message", [
    ("- {name: a, question: q}\n- just a string\n", r"entry 1: must be a mapping"),
    ("- {name: a, question: q}\n- {name: b}\n", r"entry 1: 'question' must be a non-empty string"),
    ("- {name: a, question: q}\n- {name: '', question: q}\n", r"entry 1: 'name' must be a non-empty string"),
    ("- {name: a, question: q, weight: 2}\n", r"entry 0: unknown key 'weight'"),
    ("- {name: a, question: q}\n- {name: a, question: r}\n", r"entry 1: duplicate principle name 'a'"),
    ("{name: a, question: q}\n", r"must be a non-empty list"),
    ("[]\n", r"must be a non-empty list"),
    ("- {name: a, question: [unclosed\n", r"not valid YAML"),
])
def test_malformed_files_name_the_file_and_the_entry(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConstitutionError, match=message) as err:
        load_constitution(str(path))
    assert str(path) in str(err.value)


def test_a_missing_file_says_what_to_set(tmp_path):
    message = r"nope.yaml: constitution file not found.*critic.constitution"
    with pytest.raises(ConstitutionError, match=message):
        load_constitution(str(tmp_path / "nope.yaml"))


def test_sampling_is_deterministic_per_seed_and_covers_the_constitution():
    constitution = load_constitution(None)
    ids = [f"pair-{i}" for i in range(300)]
    first = [sample_principle(constitution, 7, pid) for pid in ids]
    assert first == [sample_principle(constitution, 7, pid) for pid in ids]
    other_seed = [sample_principle(constitution, 8, pid) for pid in ids]
    assert sum(a != b for a, b in zip(first, other_seed)) > 150  # ~5/6 differ for 6 principles
    counts = Counter(p.name for p in first)
    assert set(counts) == {p.name for p in constitution}
    assert min(counts.values()) > 25  # roughly uniform: 50 expected each
    with pytest.raises(ValueError, match="no principles"):
        sample_principle([], 0, "x")


def test_question_has_the_principle_both_options_and_the_cue():
    principle = Principle("honest", "Which response is more honest?")
    text = render_question(Comparison("What is 2 + 2?", "4.", "5.", principle, second_finished=False))
    assert text.splitlines() == [
        "Consider the following conversation between a human and an assistant:", "",
        "Human: What is 2 + 2?", "", "Which response is more honest?", "Options:", "(A) 4.", "(B) 5.", "",
        "Note: response (B) was cut off before it finished.", "Answer with a single letter: A or B."]
