"""Saved model folders carry nothing of the environment (issue 13): a tokenizer loaded offline
(HF_HUB_OFFLINE=1 makes transformers load with local_files_only=True) saves the same bytes as one
loaded online."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from safetensors.torch import load_file
from transformers import AutoTokenizer

from prefpipe.models.io import build_embedded_lm, save_model, strip_environment_keys
from prefpipe.models.version import ENVIRONMENT_KEYS
from prefpipe.world.tokenizer import train_tokenizer

SIZES = SimpleNamespace(n_positions=32, n_embd=16, n_layer=1, n_head=2)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_model_saved_offline_and_online_is_byte_identical(tmp_path):
    train_tokenizer(["two times three is six"] * 20, 280).save_pretrained(tmp_path / "tokenizer")
    saved = {}
    for offline in (False, True):
        tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tokenizer", local_files_only=offline)
        assert tokenizer.init_kwargs["local_files_only"] is offline  # what would be written
        save_model(build_embedded_lm(SIZES, tokenizer, seed=0), tokenizer, tmp_path / f"m{offline}")
        saved[offline] = folder_bytes(tmp_path / f"m{offline}")
    assert saved[False] == saved[True]
    config = json.loads(saved[True]["tokenizer_config.json"])
    assert not ENVIRONMENT_KEYS & config.keys()
    assert config["eos_token"] == "<|endoftext|>" and config["pad_token"] == "<|pad|>"


def test_stripping_leaves_other_keys_and_clean_files_alone(tmp_path):
    dirty, clean = tmp_path / "tokenizer_config.json", tmp_path / "config.json"
    dirty.write_text(json.dumps({"is_local": True, "local_files_only": True, "eos_token": "e"}))
    clean.write_text('{"n_layer": 1,   "is_local_model": true}')  # odd spacing: not rewritten
    strip_environment_keys(tmp_path)
    assert json.loads(dirty.read_text()) == {"eos_token": "e"}
    assert clean.read_text() == '{"n_layer": 1,   "is_local_model": true}'


def test_a_given_state_dict_saves_the_bytes_of_a_plain_save(tmp_path):
    """The stages save `Runtime.full_state_dict`: in one process the model's own state dict, and
    from a sharded run (or a GPU) separate CPU copies, where the tied lm_head / token embedding
    are two tensors. Each writes the bytes of a plain `save_model`."""
    train_tokenizer(["two times three is six"] * 20, 280).save_pretrained(tmp_path / "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tokenizer")
    model = build_embedded_lm(SIZES, tokenizer, seed=0)
    copies = {k: v.clone() for k, v in model.state_dict().items()}
    assert copies["lm_head.weight"].data_ptr() != copies["transformer.wte.weight"].data_ptr()
    save_model(model, tokenizer, tmp_path / "plain")
    for name, state in {"own": model.state_dict(), "copies": copies}.items():
        save_model(model, tokenizer, tmp_path / name, state_dict=state)
        assert folder_bytes(tmp_path / name) == folder_bytes(tmp_path / "plain"), name
    assert "lm_head.weight" not in load_file(tmp_path / "plain" / "model.safetensors")
