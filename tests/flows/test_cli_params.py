"""`prefpipe params`: validates params.yaml and lists every knob with its help."""
from __future__ import annotations

import os

from flows.cli import main


def test_params_lists_every_knob_with_help(capsys):
    cwd = os.getcwd()
    try:
        assert main(["params"]) == 0
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "policy.dpo.beta" in out and "Rafailov" in out
    assert "generate.sampling.temperature" in out


def test_params_names_the_bad_key(tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text("generate:\n  sampling: {temperature: hot}\n")
    cwd = os.getcwd()
    try:
        assert main(["params", "--file", str(bad)]) == 2
    finally:
        os.chdir(cwd)
    assert "generate.sampling.temperature" in capsys.readouterr().err
