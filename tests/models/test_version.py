"""A model's version (issue 13): the same model written in two environments, at two paths or in
other shards has one version; one changed weight, vocabulary entry, special token or layer count
gives another. Real folders: a trained tokenizer and a tiny GPT-2 saved by transformers."""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from prefpipe.errors import DataError
from prefpipe.models.io import build_embedded_lm, load_tokenizer
from prefpipe.models.version import WEIGHTS, model_identity, model_version, read_header
from prefpipe.world.tokenizer import train_tokenizer

SIZES = SimpleNamespace(n_positions=32, n_embd=16, n_layer=1, n_head=2)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A tokenizer folder and the raw save_pretrained folder of a model with that tokenizer."""
    root = tmp_path_factory.mktemp("version")
    train_tokenizer(["one plus two is three"] * 20, 280).save_pretrained(root / "tokenizer")
    tokenizer = load_tokenizer(root / "tokenizer")
    model = build_embedded_lm(SIZES, tokenizer, seed=0)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    return root


def copy(saved: Path, target: Path) -> Path:
    return Path(shutil.copytree(saved / "model", target))


def edit_json(path: Path, change) -> None:
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content, indent=2))


def test_the_same_model_saved_offline_elsewhere_has_the_same_version(saved, tmp_path):
    """What HF_HUB_OFFLINE=1 does to a saved folder: tokenizer_config.json says local_files_only."""
    from transformers import AutoTokenizer

    offline = tmp_path / "another" / "path"
    shutil.copytree(saved / "model", offline)
    AutoTokenizer.from_pretrained(saved / "tokenizer", local_files_only=True).save_pretrained(offline)
    edit_json(offline / "config.json", lambda c: c.update(transformers_version="9.9.9"))
    online, changed = (saved / "model" / "tokenizer_config.json").read_text(), \
        (offline / "tokenizer_config.json").read_text()
    assert '"local_files_only": true' in changed and changed != online  # the bytes do differ
    assert model_version(offline) == model_version(saved / "model")


def test_a_version_is_sixteen_hex_digits_and_names_its_parts(saved):
    version = model_version(saved / "model")
    assert len(version) == 16 and int(version, 16) >= 0
    assert set(model_identity(saved / "model")) == {
        WEIGHTS, "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}


def test_shards_and_header_metadata_are_layout_not_model(saved, tmp_path):
    from transformers import AutoModelForCausalLM

    sharded = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(saved / "model").save_pretrained(sharded, max_shard_size="20KB")
    assert len(list(sharded.glob("*.safetensors"))) > 1
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(saved / "model" / name, sharded / name)
    assert model_version(sharded) == model_version(saved / "model")


def test_one_changed_weight_changes_the_version(saved, tmp_path):
    folder = copy(saved, tmp_path / "m")
    weights = folder / "model.safetensors"
    header, start = read_header(weights)
    begin = header["transformer.h.0.ln_1.bias"]["data_offsets"][0]
    data = bytearray(weights.read_bytes())
    data[start + begin] ^= 1  # one bit of one float
    weights.write_bytes(bytes(data))
    assert model_version(folder) != model_version(saved / "model")


def test_one_vocabulary_entry_changes_the_version(saved, tmp_path):
    folder = copy(saved, tmp_path / "m")

    def rename_a_token(content):
        vocab = content["model"]["vocab"]
        token = max(vocab, key=vocab.get)
        vocab["zz-renamed"] = vocab.pop(token)
    edit_json(folder / "tokenizer.json", rename_a_token)
    assert model_version(folder) != model_version(saved / "model")


def test_another_special_token_or_layer_count_changes_the_version(saved, tmp_path):
    base = model_version(saved / "model")
    pad = copy(saved, tmp_path / "pad")
    edit_json(pad / "tokenizer_config.json", lambda c: c.update(pad_token="<|endoftext|>"))
    layers = copy(saved, tmp_path / "layers")
    edit_json(layers / "config.json", lambda c: c.update(n_layer=2))
    assert len({base, model_version(pad), model_version(layers)}) == 3


def test_a_pointer_folder_counts_by_its_bytes(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, digest in ((one, "aa"), (two, "bb")):
        folder.mkdir()
        (folder / "external_model.json").write_text(json.dumps({"model": "m", "sha256": digest}))
    assert model_version(one) != model_version(two)
    assert WEIGHTS not in model_identity(one)


def framed(header: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header + bytes(4)


@pytest.mark.parametrize("content, why", [
    (b"\x01", "no header of its stated length"),
    (struct.pack("<Q", 4) + b"nope", "header"),
    (framed(b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 400]}}'), "outside the file"),
    (framed(b'{"w": {"dtype": "F32"}}'), "lacks dtype, shape or data_offsets"),
])
def test_a_broken_safetensors_file_is_named(tmp_path, content, why):
    (tmp_path / "model.safetensors").write_bytes(content)
    with pytest.raises(DataError, match=f"model.safetensors: .*{why}"):
        model_version(tmp_path)
