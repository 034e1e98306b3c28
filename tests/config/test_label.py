"""Label params: a bad nested value names its full key once (`label.human.overlap`, not
`label.human.human.overlap`)."""
from __future__ import annotations

import pytest

from prefpipe.config import load_params
from tests.config.test_loader import load_error, write

BAD_VALUES = [
    ("label:\n  human: {overlap: 0}\n", "label.human.overlap must be >= 1"),
    ("label:\n  verifier: {workers: 0}\n", "label.verifier.timeout_s and cpu_s must be > 0"),
    ("label:\n  verifier: {undecided: nobody}\n", "label.verifier.undecided must be"),
    ("label:\n  simulated: {noise: 2}\n", "label.simulated.noise must be in [0, 1], got 2.0"),
    ("label:\n  simulated: {temperature: 0}\n", "label.simulated.temperature must be > 0"),
    ("label:\n  escalate: {to: x}\n", "label.escalate.to must be one of"),
    ("label:\n  importing: {max_chars: 0}\n", "label.importing.max_chars must be >= 1, got 0"),
    ("label:\n  imports: [{path: ''}]\n", "label.imports[0].path is required"),
]


@pytest.mark.parametrize(("text", "message"), BAD_VALUES)
def test_bad_label_value_names_its_key_once(tmp_path, text, message):
    error = load_error(tmp_path, text)
    assert message in error
    section = message.split(" ")[0].split(".")[1].split("[")[0]
    assert f"{section}.{section}" not in error


def test_good_label_values_load(tmp_path):
    params = load_params(write(tmp_path, "label:\n  human: {overlap: 1}\n  importing: {max_chars: 5}\n"),
                         check_paths=False)
    assert params.label.human.overlap == 1 and params.label.importing.max_chars == 5
