"""The schema parsers and renderers on hand-written records, and the UltraFeedback binarising rule."""
from __future__ import annotations

import pytest

from prefpipe.data.interchange.formats import (
    BadRow,
    Preference,
    binarise,
    completion_score,
    parse_hh,
    parse_trl,
    parse_ultrafeedback,
    render_hh,
    render_transcript,
    render_trl,
    render_ultrafeedback,
)


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def bot(text: str) -> dict:
    return {"role": "assistant", "content": text}


# --- trl ---------------------------------------------------------------------------------------

def test_trl_standard_row():
    assert parse_trl({"prompt": "2+2?", "chosen": "4", "rejected": "5", "extra": 1}) == \
        Preference("2+2?", "4", "5")


def test_trl_conversational_explicit_prompt():
    record = {"prompt": [user("2+2?")], "chosen": [bot("4")], "rejected": [bot("5")]}
    assert parse_trl(record) == Preference("2+2?", "4", "5")


def test_trl_conversational_implicit_prompt_is_the_shared_prefix():
    history = [user("hi"), bot("hello"), user("2+2?")]
    record = {"chosen": [*history, bot("4")], "rejected": [*history, bot("5")]}
    pref = parse_trl(record)
    assert pref == Preference("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?", "4", "5")


def test_system_message_renders_as_a_turn():
    assert render_transcript([{"role": "system", "content": "be brief"}, user("2+2?")]) == \
        "\n\nSystem: be brief\n\nHuman: 2+2?"
    assert render_transcript([user("just this")]) == "just this"


@pytest.mark.parametrize("record, problem", [
    ({"prompt": "p", "chosen": "a"}, "missing column 'rejected'"),
    ({"chosen": "a", "rejected": "b"}, "missing column 'prompt'"),
    ({"prompt": "p", "chosen": 3, "rejected": "b"}, "column 'chosen' must be text, got int"),
    ({"prompt": "p", "chosen": "a", "rejected": "  "}, "column 'rejected' is empty"),
    ({"prompt": "", "chosen": "a", "rejected": "b"}, "column 'prompt' is empty"),
    ({"prompt": "p", "chosen": "same", "rejected": "same"}, "chosen and rejected are the same"),
    ({"prompt": [user("p")], "chosen": [bot("a"), bot("b")], "rejected": [bot("c")]},
     "chosen must end in exactly one assistant message"),
    ({"chosen": [user("p"), bot("a")], "rejected": [user("q"), bot("b")]}, "share no prompt messages"),
    ({"chosen": [user("p"), bot("a")], "rejected": [user("p"), bot("a")]}, "same conversation"),
    ({"prompt": [user("p")], "chosen": [{"role": "assistant"}], "rejected": [bot("b")]},
     "chosen[0] must be a {role, content} message"),
    ({"prompt": [], "chosen": [bot("a")], "rejected": [bot("b")]}, "empty message list"),
])
def test_trl_bad_rows_name_the_problem(record, problem):
    with pytest.raises(BadRow) as err:
        parse_trl(record)
    assert problem in str(err.value)


def test_trl_render_is_the_three_columns():
    assert render_trl(Preference("p", "a", "b")) == {"prompt": "p", "chosen": "a", "rejected": "b"}


# --- hh ----------------------------------------------------------------------------------------

def test_hh_single_turn_prompt_is_the_human_text():
    record = {"chosen": "\n\nHuman: What is 2+2?\n\nAssistant: 4",
              "rejected": "\n\nHuman: What is 2+2?\n\nAssistant: 5, I think"}
    assert parse_hh(record) == Preference("What is 2+2?", "4", "5, I think")


def test_hh_multi_turn_prompt_keeps_the_transcript_up_to_the_last_assistant_turn():
    prefix = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?"
    pref = parse_hh({"chosen": prefix + "\n\nAssistant: 4", "rejected": prefix + "\n\nAssistant: 22"})
    assert pref == Preference(prefix, "4", "22")
    assert render_hh(pref) == {"chosen": prefix + "\n\nAssistant: 4",
                               "rejected": prefix + "\n\nAssistant: 22"}


def test_hh_render_then_parse_is_exact():
    pref = Preference("Name a colour.", " red (leading space kept)", "blue\n")
    rendered = render_hh(pref)
    assert rendered["chosen"] == "\n\nHuman: Name a colour.\n\nAssistant:  red (leading space kept)"
    assert parse_hh(rendered) == pref


@pytest.mark.parametrize("record, problem", [
    ({"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"},
     "HH prompt mismatch"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "no turns here"}, "not an HH transcript"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: a\n\nAssistant: "},
     "last Assistant turn of column 'rejected' is empty"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: a\n\nAssistant: x"},
     "chosen and rejected are the same"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: x"}, "missing column 'rejected'"),
])
def test_hh_bad_rows(record, problem):
    with pytest.raises(BadRow) as err:
        parse_hh(record)
    assert problem in str(err.value)


# --- ultrafeedback -----------------------------------------------------------------------------

def uf_row(scores, key="overall_score", prompt_key="instruction") -> dict:
    return {prompt_key: "Say hi.",
            "completions": [{"response": f"r{i}", key: s} for i, s in enumerate(scores)]}


def test_binarise_chosen_is_the_best_and_rejected_is_drawn_among_the_lower():
    drawn = {parse_ultrafeedback(uf_row([7.5, 9.0, 6.0, 3.0]), seed).rejected for seed in range(40)}
    assert drawn == {"r0", "r2", "r3"}  # every lower completion can be drawn, never the best
    for seed in range(5):
        pref = parse_ultrafeedback(uf_row([7.5, 9.0, 6.0, 3.0]), seed)
        assert pref.prompt == "Say hi." and pref.chosen == "r1"
        assert parse_ultrafeedback(uf_row([7.5, 9.0, 6.0, 3.0]), seed) == pref  # deterministic


@pytest.mark.parametrize("scores", [[9.0, 9.0, 6.0], [5.0, 5.0], [8.0], [None, 4.0, None], []])
def test_binarise_skips_ties_and_rows_without_two_scored_completions(scores):
    assert parse_ultrafeedback(uf_row(scores)) is None


def test_binarise_ignores_unscored_completions():
    pref = parse_ultrafeedback(uf_row([None, 8.0, "N/A", 5.0]))
    assert (pref.chosen, pref.rejected) == ("r1", "r3")


def test_binarise_is_a_function_of_seed_and_content():
    draws = {binarise("p", ["a", "b", "c"], [1.0, 2.0, 0.0], seed).rejected for seed in range(40)}
    assert draws == {"a", "c"}
    assert all(binarise("p", ["a", "b", "c"], [1.0, 2.0, 0.0], seed)
               == binarise("p", ["a", "b", "c"], [1.0, 2.0, 0.0], seed) for seed in range(10))


def test_score_keys_in_order_of_preference():
    assert completion_score({"overall_score": 7, "fine-grained_score": 2}, "c") == 7.0
    assert completion_score({"fine-grained_score": 4.25}, "c") == 4.25
    assert completion_score({"ratings": [4, 5]}, "c") == 4.5
    assert completion_score({"ratings": {"honesty": 2, "helpfulness": "5"}}, "c") == 3.5
    annotations = {"honesty": {"Rating": "4"}, "helpfulness": {"Rating": "N/A"},
                   "truthfulness": {"Rating": "1"}}
    assert completion_score({"annotations": annotations}, "c") == 2.5
    assert completion_score({}, "c") is None


def test_prompt_column_or_instruction_and_text_or_response():
    record = {"prompt": "Q", "completions": [{"text": "x", "ratings": [1]}, {"text": "y", "ratings": [3]}]}
    assert parse_ultrafeedback(record) == Preference("Q", "y", "x")


@pytest.mark.parametrize("record, problem", [
    ({"completions": []}, "missing column 'prompt' (or 'instruction')"),
    ({"prompt": "Q"}, "missing column 'completions'"),
    ({"prompt": "Q", "completions": "r0"}, "'completions' must be a list"),
    ({"prompt": "Q", "completions": [{"overall_score": 3}]}, "completions[0] has no 'response'"),
    ({"prompt": "Q", "completions": [{"response": "", "overall_score": 3}]},
     "completions[0].response is empty"),
    ({"prompt": "Q", "completions": [{"response": "a", "overall_score": "high"}]},
     "completions[0].overall_score must be a number"),
    ({"prompt": "Q", "completions": [{"response": "a", "overall_score": True}]}, "must be a number"),
    ({"prompt": 7, "completions": []}, "column 'prompt' must be text"),
])
def test_ultrafeedback_bad_rows(record, problem):
    with pytest.raises(BadRow) as err:
        parse_ultrafeedback(record)
    assert problem in str(err.value)


def test_binarised_form_and_its_render_round_trip():
    pref = Preference("Say hi.", "hi!", "go away")
    row = render_ultrafeedback(pref, "pid1", 0.75)
    assert row["chosen"] == [user("Say hi."), bot("hi!")]
    assert row["messages"] == row["chosen"] and row["prompt_id"] == "pid1"
    assert (row["score_chosen"], row["score_rejected"]) == (0.75, 0.25)
    assert parse_ultrafeedback(row) == pref


def test_binarised_form_with_a_bad_score_is_a_bad_row():
    row = render_ultrafeedback(Preference("p", "a", "b"), "x", 1.0) | {"score_rejected": "low"}
    with pytest.raises(BadRow, match="score_rejected"):
        parse_ultrafeedback(row)
