"""A version's local folder: written whole from folders and files (staged, then renamed), kept on a
rerun, and listed by the relative keys the artifact store uses."""
from __future__ import annotations

import hashlib

import pytest

from prefpipe.artifacts.local import folder_files, sha256_file, stage_folder


def test_stage_folder_copies_folders_and_files_under_their_names(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "round.md").write_text("# Round 1\n")
    target = tmp_path / "versions" / "r1-abc"
    assert stage_folder(target, {"policy": tmp_path / "model", "reports/round.md": tmp_path / "round.md"})
    assert list(folder_files(target)) == ["policy/config.json", "reports/round.md"]
    assert (target / "reports" / "round.md").read_text() == "# Round 1\n"
    assert [p.name for p in target.parent.iterdir()] == ["r1-abc"]  # no staging folder left

    (tmp_path / "round.md").write_text("# changed\n")
    assert not stage_folder(target, {"reports/round.md": tmp_path / "round.md"})  # a rerun keeps it
    assert (target / "reports" / "round.md").read_text() == "# Round 1\n"


def test_a_failed_copy_leaves_no_version_folder(tmp_path):
    target = tmp_path / "versions" / "r1-abc"
    with pytest.raises(FileNotFoundError):
        stage_folder(target, {"policy": tmp_path / "missing"})
    assert not target.exists()


def test_folder_files_and_digests(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.bin").write_bytes(b"x" * 3_000_000)
    (tmp_path / "top.json").write_text("{}")
    assert folder_files(tmp_path) == {"a/b/c.bin": tmp_path / "a" / "b" / "c.bin",
                                      "top.json": tmp_path / "top.json"}
    assert sha256_file(tmp_path / "a" / "b" / "c.bin") == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    with pytest.raises(FileNotFoundError):
        folder_files(tmp_path / "nothing")
