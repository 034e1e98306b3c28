"""The `rounds` section: typed, defaulting to one round of iterative DPO (from and against the last
published version, on the latest preferences), and every bad value rejected with the dotted key."""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from prefpipe.config import Params, ParamsError, load_params
from prefpipe.config.rounds import RoundsParams
from prefpipe.vocab import RoundData, RoundModel

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, text: str) -> RoundsParams:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return load_params(path, check_paths=False).rounds


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ParamsError) as err:
        load(tmp_path, text)
    return str(err.value)


def test_defaults_are_one_round_of_iterative_dpo_on_the_latest_preferences():
    rounds = Params().rounds
    assert (rounds.iterations, rounds.replay_share, rounds.window) == (1, 0.0, 2)
    assert (rounds.data, rounds.init, rounds.reference) == ("latest", "previous", "previous")
    assert all(type(v) is str for v in (rounds.data, rounds.init, rounds.reference))


def test_repo_params_yaml_spells_out_the_defaults():
    assert load_params(REPO / "params.yaml", check_paths=False).rounds == RoundsParams()
    written = yaml.safe_load((REPO / "params.yaml").read_text())["rounds"]
    assert list(written) == [f.name for f in dataclasses.fields(RoundsParams)]  # every knob, in order


def test_every_key_is_read(tmp_path):
    rounds = load(tmp_path, "rounds: {iterations: 3, replay_share: 0.25, data: window, window: 4, "
                            "init: previous, reference: previous}\n")
    assert rounds == RoundsParams(iterations=3, replay_share=0.25, data="window", window=4,
                                  init="previous", reference="previous")
    assert isinstance(rounds.replay_share, float)


def test_replay_share_accepts_an_integer_zero_as_a_float(tmp_path):
    rounds = load(tmp_path, "rounds: {replay_share: 0}\n")
    assert rounds.replay_share == 0.0 and type(rounds.replay_share) is float


@pytest.mark.parametrize("data", RoundData.values())
def test_data_accepts_every_member(tmp_path, data):
    assert load(tmp_path, f"rounds: {{data: {data}}}\n").data == data


@pytest.mark.parametrize("key", ["init", "reference"])
@pytest.mark.parametrize("model", RoundModel.values())
def test_init_and_reference_accept_every_member(tmp_path, key, model):
    assert getattr(load(tmp_path, f"rounds: {{{key}: {model}}}\n"), key) == model


@pytest.mark.parametrize(("key", "bad", "vocabulary"), [("data", "everything", RoundData),
                                                         ("init", "latest", RoundModel),
                                                         ("reference", "base", RoundModel)])
def test_names_outside_the_vocabulary_are_rejected_with_the_key(tmp_path, key, bad, vocabulary):
    message = error(tmp_path, f"rounds: {{{key}: {bad}}}\n")
    assert f"'rounds.{key}'" in message and f"'{bad}'" in message
    assert str(list(vocabulary.values())) in message


@pytest.mark.parametrize(("text", "expected"), [
    ("iterations: 0", "rounds.iterations: must be an integer >= 1, got 0"),
    ("window: 0", "rounds.window: must be an integer >= 1, got 0"),
    ("replay_share: 1.0", "rounds.replay_share: must be in [0, 1), got 1.0"),
    ("replay_share: -0.1", "rounds.replay_share: must be in [0, 1), got -0.1"),
])
def test_out_of_range_values_name_the_key(tmp_path, text, expected):
    message = error(tmp_path, f"rounds: {{{text}}}\n")
    assert message == f"{tmp_path / 'params.yaml'}: {expected}"


@pytest.mark.parametrize("text", ["iterations: 1", "window: 1", "replay_share: 0.0",
                                  "replay_share: 0.99"])
def test_the_edges_of_each_range_load(tmp_path, text):
    load(tmp_path, f"rounds: {{{text}}}\n")


@pytest.mark.parametrize(("text", "kind"), [("iterations: two", "integer"), ("iterations: 1.5", "integer"),
                                            ("window: true", "integer"), ("replay_share: half", "number")])
def test_wrong_types_name_the_key(tmp_path, text, kind):
    message = error(tmp_path, f"rounds: {{{text}}}\n")
    assert f"'rounds.{text.split(':')[0]}'" in message and kind in message


def test_an_unknown_key_is_named_with_the_known_ones(tmp_path):
    message = error(tmp_path, "rounds: {iteration: 2}\n")
    assert "unknown key 'rounds.iteration'" in message
    assert "iterations, replay_share, data, window, init, reference" in message


def test_the_section_must_be_a_mapping(tmp_path):
    assert "rounds must be a mapping" in error(tmp_path, "rounds: 3\n")


def test_every_knob_has_help_and_the_section_is_frozen():
    fields = dataclasses.fields(RoundsParams)
    assert all(f.metadata.get("help") for f in fields)
    with pytest.raises(dataclasses.FrozenInstanceError):
        RoundsParams().iterations = 2  # type: ignore[misc]


def test_vocabularies_keep_their_stored_strings_and_feed_the_fields():
    assert RoundData.values() == ("all", "latest", "window")
    assert RoundModel.values() == ("sft", "previous")
    hints = typing.get_type_hints(RoundsParams)
    assert typing.get_args(hints["data"]) == RoundData.values()
    assert typing.get_args(hints["init"]) == typing.get_args(hints["reference"]) == RoundModel.values()
