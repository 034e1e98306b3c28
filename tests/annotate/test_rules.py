"""The rules of annotation, without a store: ids, answers, rationales, the shown-order mapping."""
from __future__ import annotations

import pytest

from prefpipe.annotate.rules import (
    MAX_RATIONALE_CHARS,
    SHOWN_CHOICES,
    AnnotationError,
    check_annotator_id,
    clean_rationale,
    task_id,
    to_pair_choice,
    to_shown_choice,
    token_hash,
)
from prefpipe.errors import PrefpipeError


@pytest.mark.parametrize("good", ["a", "ann-1", "a.b@c_d", "9" * 64])
def test_good_annotator_ids_pass(good):
    assert check_annotator_id(good) == good


@pytest.mark.parametrize("bad", ["", None, "bad id", "-lead", "x" * 65, "x' OR 1=1 --", "é"])
def test_bad_annotator_ids_raise_one_clear_prefpipe_error(bad):
    with pytest.raises(AnnotationError, match="annotator id") as raised:
        check_annotator_id(bad)
    assert isinstance(raised.value, PrefpipeError) and isinstance(raised.value, ValueError)
    assert "\n" not in str(raised.value)


def test_rationales_are_stripped_and_capped():
    assert clean_rationale(None) is None and clean_rationale("   ") is None
    assert clean_rationale("  why  ") == "why"
    assert clean_rationale("x" * MAX_RATIONALE_CHARS) == "x" * MAX_RATIONALE_CHARS
    with pytest.raises(AnnotationError, match="rationale has 5001 characters"):
        clean_rationale("x" * (MAX_RATIONALE_CHARS + 1))


def test_shown_choices_map_to_a_and_b_and_back():
    for shown_order in ("ab", "ba"):
        for choice in SHOWN_CHOICES:
            assert to_shown_choice(to_pair_choice(choice, shown_order), shown_order) == choice
    assert to_pair_choice("first", "ab") == "a" and to_pair_choice("first", "ba") == "b"
    with pytest.raises(AnnotationError, match="choice 'a' is not one of"):
        to_pair_choice("a", "ab")


def test_hashes_are_stable():
    assert token_hash("t") == "e3b98a4da31a127d4bde6e43033f66ba274cab0eb7eb1c70ec41402bf6273dd8"
    assert len(task_id("p0", "u1")) == 20 and task_id("p0", "u1") != task_id("p0", "u2")
