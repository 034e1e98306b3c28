"""`dvc repro` reproduces byte for byte whatever the caller's environment (issue 13).

The default pipeline runs on tiny params in two copies of the project at different paths: once with
no Hugging Face variables set, once as someone working offline runs it (HF_HUB_OFFLINE,
TRANSFORMERS_OFFLINE, another HF_HOME and TMPDIR). Every output DVC tracks must have the same hash
in both dvc.lock files, every stage's (prepare to publish). This is also the suite's check that the same
params and seed give the same outputs.

Slow (about two minutes; the two runs go side by side): each stage is a real subprocess started by
DVC."""
from __future__ import annotations

import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import QUICK, Repo, env_for, make_repo

pytestmark = pytest.mark.slow
LAST_STAGE = "publish"
COVERED = {"prepare", "sft", "round", "generate", "label", "train_reward", "train_policy", "evaluate", "gate",
           "publish"}
ENVIRONMENT = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "TMPDIR")


def repro(repo: Repo, environment: dict[str, str]) -> dict[str, str]:
    """`dvc repro LAST_STAGE` with exactly `environment` among the ENVIRONMENT variables; its outs."""
    env = {k: v for k, v in env_for(repo.path).items() if k not in ENVIRONMENT} | environment
    # a session of its own, so a timeout kills the whole tree (dvc -> stage -> torch)
    process = subprocess.Popen(["dvc", "repro", LAST_STAGE], cwd=repo.path, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, f"{repo.path}: dvc repro exited {process.returncode}:\n{output[-3000:]}"
    return repo.lock_hashes()


def differing(first: dict[str, str], second: dict[str, str]) -> list[str]:
    """The outs ('stage:path') whose hashes differ, or that only one lock file has."""
    return sorted(out for out in first.keys() | second.keys() if first.get(out) != second.get(out))


def test_differing_names_each_changed_or_missing_out():
    first = {"sft:models/sft": "a", "generate:data/pairs.parquet": "b", "prepare:models/tokenizer": "c"}
    assert differing(first, dict(first)) == []
    second = {**first, "sft:models/sft": "z"}
    del second["prepare:models/tokenizer"]
    assert differing(first, second) == ["prepare:models/tokenizer", "sft:models/sft"]


def test_two_environments_give_identical_out_hashes(tmp_path):
    plain = make_repo(tmp_path / "plain", None, QUICK)
    elsewhere = make_repo(tmp_path / "elsewhere" / "a" / "longer" / "path", None, QUICK)
    for name in ("hf_home", "tmp"):
        (tmp_path / "offline" / name).mkdir(parents=True)
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HOME": str(tmp_path / "offline" / "hf_home"),
               "TMPDIR": str(tmp_path / "offline" / "tmp")}
    with ThreadPoolExecutor(2) as pool:  # one torch thread each (TINY's runtime.threads)
        first, second = pool.map(repro, [plain, elsewhere], [{}, offline])
    assert {out.split(":")[0] for out in first} == COVERED
    changed = differing(first, second)
    assert not changed, f"outs whose hash depends on the environment: {changed}"
