"""The README's "From Python" example runs as written, on a real model folder."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from tests.train import tiny

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    section = README.read_text().split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_example_trains_dpo_on_a_model_folder(tmp_path):
    tok = tiny.tokenizer()
    tiny.policy_lm(tok).save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    code = readme_example().replace('"path/to/my-sft-model"', repr(str(tmp_path / "model")))
    before = {k: v.clone() for k, v in tiny.policy_lm(tok).state_dict().items()}

    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 (the README's own code)

    history = namespace["history"]
    assert 1 <= len(history) <= 2  # 2 pairs, batch 2, 2 epochs; the callback may stop it earlier
    assert all(row["loss"] > 0 for row in history)
    after = namespace["policy"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the policy was trained
    assert namespace["tokenizer"].chat_template is not None  # raw: the prompt alone, via a template
