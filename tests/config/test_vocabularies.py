"""Config fields whose names come from prefpipe.vocab accept every member, reject anything else with
the dotted key, and keep the value the user wrote (a plain str, so params stay plain YAML)."""
from __future__ import annotations

from pathlib import Path

import pytest

from prefpipe.config import ParamsError, load_params
from prefpipe.vocab import DPOVariant, Format, JudgeBackend, Labeler, LabelSource


def load(tmp_path: Path, text: str):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return load_params(path, check_paths=False)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ParamsError) as err:
        load(tmp_path, text)
    return str(err.value)


@pytest.mark.parametrize("labeler", Labeler.values())
def test_routing_accepts_every_labeler(tmp_path, labeler):
    text = f"label:\n  routing: {{default: {labeler}}}\n  human: {{annotators: [a1, a2]}}\n"
    routing = load(tmp_path, text).label.routing
    assert routing["default"] == labeler and type(routing["default"]) is str


def test_routing_error_lists_the_labelers(tmp_path):
    message = error(tmp_path, "label:\n  routing: {default: oracle}\n")
    assert "label.routing.default" in message and ", ".join(Labeler.values()) in message


@pytest.mark.parametrize("fmt", Format.values())
@pytest.mark.parametrize("source", LabelSource.values())
def test_imports_accept_every_format_and_source(tmp_path, fmt, source):
    spec = load(tmp_path, f"label:\n  imports: [{{path: x.jsonl, format: {fmt}, source: {source}}}]\n"
                ).label.imports[0]
    assert (spec.format, spec.source) == (fmt, source)
    assert type(spec.format) is str and type(spec.source) is str


@pytest.mark.parametrize(("key", "bad", "vocabulary"),
                         [("format", "csv", Format), ("source", "crowd", LabelSource)])
def test_imports_reject_names_outside_the_vocabulary(tmp_path, key, bad, vocabulary):
    message = error(tmp_path, f"label:\n  imports: [{{path: x.jsonl, {key}: {bad}}}]\n")
    assert f"'label.imports[0].{key}'" in message and bad in message
    assert str(list(vocabulary.values())) in message


def test_critic_judge_comes_from_the_vocabulary(tmp_path):
    assert load(tmp_path, "label:\n  critic: {judge: rule}\n").label.critic.judge == JudgeBackend.RULE
    message = error(tmp_path, "label:\n  critic: {judge: oracle}\n")
    assert "'label.critic.judge'" in message and str(list(JudgeBackend.values())) in message


@pytest.mark.parametrize("loss", DPOVariant.values())
def test_dpo_loss_accepts_every_variant(tmp_path, loss):
    dpo = load(tmp_path, f"policy:\n  dpo: {{loss: {loss}}}\n").policy.dpo
    assert dpo.loss == loss and type(dpo.loss) is str


def test_dpo_loss_rejects_an_unknown_variant(tmp_path):
    message = error(tmp_path, "policy:\n  dpo: {loss: orpo}\n")
    assert "'policy.dpo.loss'" in message and str(list(DPOVariant.values())) in message


def test_config_defaults_are_plain_strings():
    from prefpipe.config import Params

    params = Params()
    for value in (params.label.critic.judge, params.policy.dpo.loss, params.label.verifier.undecided,
                  params.label.human.missing, params.label.escalate.to):
        assert type(value) is str
