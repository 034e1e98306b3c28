"""`prefpipe reproduce VERSION` on a tiny real project (git, DVC, a registry in a real store): its
first stage snapshots a file DVC can't see (a stand-in for the store) and is `always_changed`, its
second trains on the snapshot. A deterministic round reproduces with every cached out matching
although the stand-in changed since; a round whose stage writes time.time() into a cached out is
reported as different, exit 1. And the pieces: which dvc.lock entries are the round's, the
comparison, the snapshot stages."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.reproduce import compare, round_stages, snapshot_stages
from prefpipe.store import Store
from tests.conftest import ROOT, env_for

DVC_YAML = """\
stages:
  snapshot:
    cmd: python snapshot.py
    always_changed: true
    deps: [snapshot.py]
    outs:
      - snap/labels.txt:
          persist: true
  train:
    cmd: python train.py
    deps: [train.py, snap/labels.txt]
    outs: [model/weights.txt]
    metrics:
      - report.json:
          cache: false
"""
SNAPSHOT = """\
import pathlib
pathlib.Path("snap").mkdir(exist_ok=True)
pathlib.Path("snap/labels.txt").write_text(pathlib.Path("inbox/labels.txt").read_text())
"""
TRAIN = """\
import json, pathlib, time
pathlib.Path("model").mkdir(exist_ok=True)
labels = pathlib.Path("snap/labels.txt").read_text()
pathlib.Path("model/weights.txt").write_text(labels.upper(){planted})
pathlib.Path("report.json").write_text(json.dumps({{"written_at": time.time()}}))
"""


def sh(cwd: Path, *command: str) -> str:
    done = subprocess.run(command, cwd=cwd, env=env_for(cwd), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout


def commit(project: Path, message: str) -> str:
    sh(project, "git", "add", "-A")
    sh(project, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)
    return sh(project, "git", "rev-parse", "HEAD").strip()


def play_round(project: Path, number: int, planted: str = "") -> str:
    """Commit train.py (with `planted` appended to what it writes), `dvc repro`, and publish the
    round's version with the git revision, params.yaml and dvc.lock, as the publish stage does."""
    (project / "train.py").write_text(TRAIN.format(planted=planted))
    revision = commit(project, f"round {number}")
    sh(project, "dvc", "repro")
    store = Store(project / "store" / "prefpipe.duckdb", lock_timeout_s=20)
    store.registry.start_round(number, None, "h", "d", 1, 1, "new labels", [], "run")
    version = f"r{number}-{revision[:8]}"
    store.registry.publish({"version": version, "round": number, "model_hash": revision,
                            "git_revision": revision, "params_yaml": (project / "params.yaml").read_text(),
                            "dvc_lock": (project / "dvc.lock").read_text()})
    return version


@pytest.fixture
def project(tmp_path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(ROOT / "params.yaml", project / "params.yaml")  # the CLI reads store.path from it
    (project / "dvc.yaml").write_text(DVC_YAML)
    (project / "snapshot.py").write_text(SNAPSHOT)
    (project / ".gitignore").write_text("/store/\n/inbox/\n")
    (project / "inbox").mkdir()
    (project / "inbox" / "labels.txt").write_text("a>b\n")
    sh(project, "git", "init", "-q")
    sh(project, "dvc", "init", "-q")
    sh(project, "dvc", "config", "core.analytics", "false")
    return project


def reproduce(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**env_for(project), "PREFPIPE_ROOT": str(project)}
    return subprocess.run([sys.executable, "-m", "flows.cli", "reproduce", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def worktree_of(result: subprocess.CompletedProcess) -> Path:
    first = next(line for line in result.stdout.splitlines() if line.startswith("reproduce "))
    return Path(first.rsplit(" in ", 1)[1])


@pytest.mark.slow
def test_reproduce_matches_a_deterministic_round_and_flags_a_planted_timestamp(project, tmp_path):
    honest = play_round(project, 1)
    (project / "inbox" / "labels.txt").write_text("a>b\nb>c\n")  # new labels since: the live store moved
    result = reproduce(project, honest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all outs match: the 2 cached outs have their recorded hashes" in result.stdout
    rows = {tuple(line.split()[:2]): line.split()[-1] for line in result.stdout.splitlines()
            if line.startswith(("snapshot ", "train "))}
    assert rows[("snapshot", "snap/labels.txt")] == "rerun"  # "restored, not rerun"
    assert rows[("train", "model/weights.txt")] == "match"
    assert "not cached, and different (a timestamp, say): train:report.json" in result.stdout
    assert "Running stage 'train'" in result.stdout + result.stderr  # dvc's own output, streamed
    assert not worktree_of(result).exists() and "worktree removed" in result.stdout
    assert sh(project, "git", "worktree", "list").count("\n") == 1

    planted = play_round(project, 2, planted=" + str(time.time())")
    (project / "inbox" / "labels.txt").write_text("later\n")
    kept = tmp_path / "kept"
    result = reproduce(project, planted, "--keep", str(kept))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 of 2 cached outs differ: train:model/weights.txt" in result.stdout
    assert (kept / "store" / "prefpipe.duckdb").exists() and (kept / "model" / "weights.txt").exists()
    assert f"worktree kept in {kept}" in result.stdout
    assert (kept / "snap" / "labels.txt").read_text() == "a>b\nb>c\n"  # the round's snapshot, restored


def test_an_unknown_version_or_revision_is_one_line(project):
    store = Store(project / "store" / "prefpipe.duckdb", lock_timeout_s=20)
    store.registry.start_round(1, None, "h", "d", 1, 1, "first", [], "run")
    store.registry.publish({"version": "r1-gone", "round": 1, "model_hash": "m", "git_revision": "0" * 40,
                            "params_yaml": "seed: 1\n", "dvc_lock": "schema: '2.0'\n"})
    for version, expected in [
            ("r7-nothere", "error: unknown model version 'r7-nothere'; known versions: r1-gone"),
            ("r1-gone", f"error: model version r1-gone: git revision {'0' * 40} is unknown to the git "
                        f"repository in {project}")]:
        result = reproduce(project, version)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith(expected)
    assert sh(project, "git", "worktree", "list").count("\n") == 1


def lock(**stages: tuple[dict, dict]) -> str:
    """A dvc.lock of stages given as (deps, outs) mappings of path -> md5."""
    return yaml.safe_dump({"schema": "2.0", "stages": {
        name: {"deps": [{"path": p, "md5": m} for p, m in deps.items()],
               "outs": [{"path": p, "md5": m} for p, m in outs.items()]}
        for name, (deps, outs) in stages.items()}}, sort_keys=False)


def test_a_lock_entry_older_than_the_round_is_not_the_rounds():
    recorded = lock(snapshot=({}, {"snap": "s2"}), train=({"snap": "s2"}, {"model": "m2"}),
                    publish=({"model": "m1"}, {"report.md": "r1"}),  # from the round before
                    after=({"report.md": "r1"}, {"x": "x1"}))  # reads only what the older entry made
    assert round_stages(recorded) == ["snapshot", "train"]
    current = lock(snapshot=({}, {"snap": "s2"}), train=({"snap": "s2"}, {"model": "m2"}),
                   publish=({"model": "m2"}, {"report.md": "r2"}))
    assert round_stages(current) == ["snapshot", "train", "publish"]


def test_compare_tells_cached_from_uncached_and_missing_outs():
    dvc_yaml = yaml.safe_load(DVC_YAML)
    recorded = lock(snapshot=({}, {"snap/labels.txt": "s"}),
                    train=({}, {"model/weights.txt": "w", "report.json": "r"}))
    rerun = lock(snapshot=({}, {"snap/labels.txt": "s"}),
                 train=({}, {"model/weights.txt": "W", "report.json": "R", "extra.bin": "e"}))
    checks = {(c.stage, c.path): c for c in compare(recorded, rerun, dvc_yaml, ["train"], {"snapshot"})}
    assert checks["snapshot", "snap/labels.txt"].matches and checks["snapshot", "snap/labels.txt"].restored
    assert not checks["train", "model/weights.txt"].matches and checks["train", "model/weights.txt"].cached
    assert not checks["train", "report.json"].cached and not checks["train", "report.json"].matches
    assert checks["train", "extra.bin"].recorded is None and checks["train", "extra.bin"].cached
    same = compare(recorded, recorded, dvc_yaml, ["train"], {"snapshot"})
    assert all(c.matches for c in same) and len(same) == 3


def test_snapshot_stages_are_always_changed_or_always_run(tmp_path):
    path = tmp_path / "dvc.yaml"
    path.write_text(DVC_YAML + "  round:\n    cmd: python round.py\n    meta: {always_run: true}\n"
                    "    outs: [generator]\n")
    assert snapshot_stages(path) == {"snapshot", "round"}
    path.write_text(DVC_YAML.replace("    always_changed: true\n", ""))
    assert snapshot_stages(path) == set()
