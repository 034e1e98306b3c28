"""`prefpipe rounds` and `prefpipe rollback`, run as a user would (`python -m flows.cli` in a
subprocess, PREFPIPE_ROOT a copy of the project made by make_repo) against a real store file filled
through `store.registry`. `prefpipe reproduce` is tests/flows/test_reproduce.py's."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from prefpipe.store import Store
from tests.conftest import ROOT, Repo, env_for, make_repo

EVALUATION = {"win_rate": 0.72, "win_rate_low": 0.69, "win_rate_high": 0.75, "kl_nats": 1.7,
              "val_gold_accuracy": 0.912}


def prefpipe(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**env_for(root), "PREFPIPE_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def repo(tmp_path) -> Repo:
    return make_repo(tmp_path / "repo")


def store_of(repo: Repo) -> Store:
    return Store(repo.path / repo.params()["store"]["path"], lock_timeout_s=20)


def play_round(store: Store, number: int, parent: str | None, metrics: dict | None) -> str | None:
    """Round `number` sampled from `parent`: published with `metrics`, or rejected when None."""
    store.registry.start_round(number, parent, "hash", "digest", 10 * number, 3 * number, "new prompts",
                               [f"q{number}"], "run")
    if metrics is None:
        store.registry.finish_round(number, "rejected", message="gate win_rate_low failed")
        return None
    version = f"r{number}-{number:08d}"
    store.registry.publish({"version": version, "round": number, "parent_version": parent,
                            "model_hash": f"{number:08d}ff", "metrics": metrics})
    return version


def test_no_rounds_yet(repo):
    result = prefpipe(repo.path, "rounds")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no rounds yet: `prefpipe run` runs round 1\n"
    listed = prefpipe(repo.path, "rounds", "--json")
    assert json.loads(listed.stdout) == {"current": None, "rounds": []}


def test_rounds_list_versions_metrics_and_current_and_rollback_moves_it(repo):
    store = store_of(repo)
    first = play_round(store, 1, None, EVALUATION)
    play_round(store, 2, first, None)
    third = play_round(store, 3, first, {"win_rate": 0.8, "win_rate_low": 0.77, "win_rate_high": 0.83})
    result = prefpipe(repo.path, "rounds")
    assert result.returncode == 0, result.stderr
    header, *rows, last = result.stdout.splitlines()
    assert header.split("  ")[0:2] == ["round", "status"] and "gold win rate vs SFT [95% CI]" in header
    assert "KL nats (held-out)" in header and "RM gold acc." in header
    assert rows[0].split() == ["1", "published", "SFT", "10", "3", first, "0.720", "[0.690,", "0.750]",
                               "1.70", "0.912"]
    assert rows[1].split() == ["2", "rejected", first, "20", "6", "-"]
    assert rows[2].split()[:8] == ["3", "published", first, "30", "9", third, "(current)", "0.800"]
    assert last == f"current: {third}"

    moved = prefpipe(repo.path, "rollback", first)
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == f"current: {third} -> {first}; the next round samples from {first}\n"
    assert store.registry.current()["version"] == first
    after = prefpipe(repo.path, "rounds").stdout.splitlines()
    assert f"{first} (current)" in after[1] and "(current)" not in after[3]
    assert after[-1] == f"current: {first}"
    listed = json.loads(prefpipe(repo.path, "rounds", "--json").stdout)
    assert listed["current"] == first and [r["status"] for r in listed["rounds"]] == [
        "published", "rejected", "published"]
    assert listed["rounds"][0]["metrics"]["win_rate"] == 0.72


def test_rollback_to_an_unknown_version_is_one_line_and_moves_nothing(repo):
    store = store_of(repo)
    first = play_round(store, 1, None, EVALUATION)
    result = prefpipe(repo.path, "rollback", "r9-nothere")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0] == f"error: unknown model version 'r9-nothere'; known versions: {first}"
    assert store.registry.current()["version"] == first and result.stdout == ""


def test_rollback_before_anything_is_published_says_so(repo):
    result = prefpipe(repo.path, "rollback", "r1-00000001")
    assert result.returncode == 2
    assert result.stderr == ("error: unknown model version 'r1-00000001'; known versions: "
                             "none (nothing published yet)\n")
