"""The user's model is tracked by DVC (issue 15): a model folder under data/inputs/ is fingerprinted
by the prepare stage, and the sft pointer records it, so editing a file of the model makes models/sft
(and so generate and everything after it) change."""
from __future__ import annotations

import json

import pytest

from tests.conftest import make_repo
from tests.train import tiny

pytestmark = pytest.mark.slow  # real dvc: four stage runs, ~60 s on a loaded CPU
MODEL = "data/inputs/my-model"


def stale(repo) -> dict:
    return json.loads(repo.dvc("status", "--json").stdout or "{}")


def test_editing_a_file_of_the_users_model_reruns_sft(tmp_path):
    repo = make_repo(tmp_path / "repo", None, {
        "model": {"policy": MODEL, "n_positions": 64},  # the tiny model reads 64 positions
        "data": {"prompts": "data/inputs/prompts.jsonl"},
        # your own prompts need a model judge (params fail early with the rule judge)
        "label": {"critic": {"judge": "http", "http": {"model": "judge"}}}})
    model = repo.path / MODEL
    tok = tiny.tokenizer()
    tiny.policy_lm(tok).save_pretrained(model)
    tok.save_pretrained(model)
    (repo.path / "data" / "inputs" / "prompts.jsonl").write_text("".join(
        json.dumps({"prompt": f"Say hi number {i}.", "category": "chat"}) + "\n" for i in range(10)))

    repo.dvc("repro", "sft")
    sources = repo.path / "models" / "sources"
    policy = json.loads((sources / "policy.json").read_text())
    assert policy["model"] == MODEL and policy["kind"] == "folder" and policy["files"] >= 3
    assert json.loads((sources / "reward.json").read_text()) == {"model": ""}
    assert json.loads((sources / "critic.json").read_text()) == {"model": ""}  # the judge is http
    pointer = json.loads((repo.path / "models" / "sft" / "external_model.json").read_text())
    assert pointer == policy  # resolve_model_dir follows pointer["model"]
    assert not {"prepare", "sft"} & set(stale(repo))
    before = repo.lock_hashes()["sft:models/sft"]

    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "note": "edited"}))
    assert stale(repo)["prepare"] == [{"changed deps": {"data/inputs": "modified"}}]
    repo.dvc("repro", "sft")
    after = json.loads((repo.path / "models" / "sft" / "external_model.json").read_text())
    assert after["sha256"] != policy["sha256"]
    assert repo.lock_hashes()["sft:models/sft"] != before  # generate depends on models/sft
    assert not {"prepare", "sft"} & set(stale(repo))
