"""A model's fingerprint (issue 15): any change of a folder's files changes it, the same files give
the same one wherever they lie, and the embedded model and no model are constants."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub.constants
import pytest

from prefpipe.errors import StageInputError
from prefpipe.models import fingerprint as fp
from prefpipe.models.fingerprint import fingerprint


def model_folder(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_positions": 64}))
    (path / "model.safetensors").write_bytes(bytes(range(256)) * 10)
    (path / "sub" / "tokenizer.json").write_text("{}")
    return path


def test_a_folder_records_its_hash_file_count_and_bytes(tmp_path):
    folder = model_folder(tmp_path / "data" / "inputs" / "m")
    found = fingerprint("data/inputs/m", tmp_path)
    assert found["model"] == "data/inputs/m" and found["kind"] == "folder"
    assert found["files"] == 3
    assert found["bytes"] == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert len(found["sha256"]) == 64


def test_same_content_elsewhere_gives_the_same_hash(tmp_path):
    a = model_folder(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    assert fingerprint(str(a), tmp_path)["sha256"] == fingerprint(str(b), tmp_path)["sha256"]


@pytest.mark.parametrize("change", ["edit", "append", "rename", "add", "remove", "move"])
def test_any_change_of_the_files_changes_the_hash(tmp_path, change):
    folder = model_folder(tmp_path / "m")
    before = fingerprint(str(folder), tmp_path)["sha256"]
    weights = folder / "model.safetensors"
    if change == "edit":  # one byte, same size
        data = bytearray(weights.read_bytes())
        data[100] ^= 1
        weights.write_bytes(bytes(data))
    elif change == "append":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "extra": 1}))
    elif change == "rename":
        weights.rename(folder / "pytorch_model.safetensors")
    elif change == "add":
        (folder / "README.md").write_text("")
    elif change == "remove":
        (folder / "sub" / "tokenizer.json").unlink()
    else:  # the same bytes under another folder
        (folder / "sub" / "tokenizer.json").rename(folder / "tokenizer.json")
    assert fingerprint(str(folder), tmp_path)["sha256"] != before


def test_file_boundaries_count(tmp_path):
    # "ab" + "c" and "a" + "bc" under the same names: the sizes keep them apart
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, (x, y) in ((one, ("ab", "c")), (two, ("a", "bc"))):
        folder.mkdir()
        (folder / "x").write_text(x)
        (folder / "y").write_text(y)
    assert fingerprint(str(one), tmp_path)["sha256"] != fingerprint(str(two), tmp_path)["sha256"]


def test_large_files_are_read_in_chunks(tmp_path, monkeypatch):
    folder = model_folder(tmp_path / "m")
    whole = fingerprint(str(folder), tmp_path)
    monkeypatch.setattr(fp, "CHUNK", 7)
    assert fingerprint(str(folder), tmp_path) == whole


@pytest.mark.parametrize("ref", ["embedded", ""])
def test_the_embedded_model_and_no_model_are_constants(tmp_path, ref):
    assert fingerprint(ref, tmp_path) == {"model": ref}


def test_a_hub_id_without_a_cached_snapshot_is_just_the_id(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert fingerprint("some-org/some-model", tmp_path) == {"model": "some-org/some-model", "kind": "hub"}


def test_a_hub_id_in_the_cache_records_its_snapshot_revision(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    repo = cache / "models--some-org--some-model"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    assert fingerprint("some-org/some-model", tmp_path) == {
        "model": "some-org/some-model", "kind": "hub", "revision": commit}


def test_a_missing_folder_that_is_no_hub_id_names_it(tmp_path):
    with pytest.raises(StageInputError, match="data/inputs/gone"):
        fingerprint("data/inputs/gone", tmp_path)
