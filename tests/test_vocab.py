"""The vocabularies (prefpipe/vocab.py) and the consumers that must read them, not copies."""
from __future__ import annotations

import argparse
import typing

import pytest

from prefpipe.vocab import (
    Choice,
    DPOVariant,
    Format,
    JudgeBackend,
    Labeler,
    LabelSource,
    RoundData,
    RoundModel,
    Vocabulary,
    literal,
)

VOCABULARIES = [Labeler, LabelSource, Choice, Format, DPOVariant, JudgeBackend, RoundData, RoundModel]


@pytest.mark.parametrize("vocabulary", VOCABULARIES, ids=lambda v: v.__name__)
def test_members_are_their_stored_strings(vocabulary: type[Vocabulary]):
    values = vocabulary.values()
    assert all(type(v) is str for v in values) and len(set(values)) == len(values)
    assert [str(member) for member in vocabulary] == list(values)
    assert all(f"{member}" == member.value and member == member.value for member in vocabulary)


@pytest.mark.parametrize("vocabulary", VOCABULARIES, ids=lambda v: v.__name__)
def test_literal_and_sql_list_follow_the_declaration_order(vocabulary: type[Vocabulary]):
    assert typing.get_origin(literal(vocabulary)) is typing.Literal
    assert typing.get_args(literal(vocabulary)) == vocabulary.values()
    assert vocabulary.sql_in() == ", ".join(f"'{v}'" for v in vocabulary.values())


def test_today_s_stored_strings_are_unchanged():
    # Stored in the store, labels.parquet and params.yaml: renaming one is a migration, not a refactor.
    assert LabelSource.values() == ("simulated", "verifier", "human", "critic", "import")
    assert Choice.values() == ("a", "b", "tie", "both_bad")
    assert Labeler.values() == ("verifier", "critic", "human", "simulated")
    assert Format.values() == ("trl", "hh", "ultrafeedback")
    assert DPOVariant.values() == ("sigmoid", "robust", "ipo", "hinge", "simpo")
    assert JudgeBackend.values() == ("rule", "http", "local")


def test_every_labeler_s_labels_carry_a_known_source():
    assert set(Labeler.values()) <= set(LabelSource.values())


def test_decisive_choices_pick_a_side():
    assert Choice.decisive() == ("a", "b") and set(Choice.decisive()) < set(Choice.values())


def _label_subcommands() -> dict[str, argparse.ArgumentParser]:
    from flows.label_cli import add_label_commands

    parser = argparse.ArgumentParser()
    add_label_commands(parser.add_subparsers(dest="command"))
    label = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["label"]
    return next(a for a in label._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize(("command", "option", "vocabulary"),
                         [("import", "--format", Format), ("import", "--source", LabelSource),
                          ("export", "--format", Format)])
def test_cli_choices_are_the_vocabulary(command, option, vocabulary):
    action = next(a for a in _label_subcommands()[command]._actions if option in a.option_strings)
    assert tuple(action.choices) == vocabulary.values()


def test_cli_rejects_a_name_outside_the_vocabulary(capsys):
    with pytest.raises(SystemExit):
        _label_subcommands()["import"].parse_args(["x.jsonl", "--format", "csv"])
    assert "invalid choice: 'csv'" in capsys.readouterr().err
