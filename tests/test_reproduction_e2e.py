"""`dvc repro` reproduces byte for byte whatever the caller's environment (issue 13), and a DVC
remote on S3 brings a run to a fresh clone (issue 12).

The default pipeline runs on tiny params in two copies of the project at different paths: once with
no Hugging Face variables set, once as someone working offline runs it (HF_HUB_OFFLINE,
TRANSFORMERS_OFFLINE, another HF_HOME and TMPDIR). Every output DVC tracks must have the same hash
in both dvc.lock files, every stage's (prepare to publish). This is also the suite's check that the same
params and seed give the same outputs.

The first copy is then committed as its user would, with a remote on the session's moto S3 server
(credentials only in the environment): `dvc push`, `git clone`, `dvc pull`, and the clone has every
out with its hash and nothing to reproduce.

Slow (about two minutes; the two runs go side by side, once for the module): each stage is a real
subprocess started by DVC."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from tests.conftest import QUICK, ROOT, Repo, S3Server, env_for, make_repo

pytestmark = pytest.mark.slow
LAST_STAGE = "publish"
COVERED = {"prepare", "sft", "round", "generate", "label", "train_reward", "train_policy", "evaluate", "gate",
           "publish"}
ENVIRONMENT = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "TMPDIR")
GIT_USER = ("-c", "user.name=prefpipe tests", "-c", "user.email=tests@prefpipe.invalid")


def run(cwd: Path, args: list[str], env: dict[str, str], timeout: float = 600) -> str:
    """`args` in `cwd` with exactly `env`; its output (stdout and stderr), asserting exit 0."""
    # a session of its own, so a timeout kills the whole tree (dvc -> stage -> torch)
    process = subprocess.Popen(args, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, f"{cwd}: {' '.join(args)} exited {process.returncode}:\n{output[-3000:]}"
    return output


def repro(repo: Repo, environment: dict[str, str]) -> dict[str, str]:
    """`dvc repro LAST_STAGE` with exactly `environment` among the ENVIRONMENT variables; its outs."""
    env = {k: v for k, v in env_for(repo.path).items() if k not in ENVIRONMENT} | environment
    run(repo.path, ["dvc", "repro", LAST_STAGE], env)
    return repo.lock_hashes()


def differing(first: dict[str, str], second: dict[str, str]) -> list[str]:
    """The outs ('stage:path') whose hashes differ, or that only one lock file has."""
    return sorted(out for out in first.keys() | second.keys() if first.get(out) != second.get(out))


class Runs(NamedTuple):
    plain: Repo
    first: dict[str, str]  # plain's outs, from its dvc.lock
    second: dict[str, str]  # the offline copy's, elsewhere


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    """The pipeline run once, side by side, in a plain copy and in one elsewhere run offline."""
    tmp_path = tmp_path_factory.mktemp("repro")
    plain = make_repo(tmp_path / "plain", None, QUICK)
    elsewhere = make_repo(tmp_path / "elsewhere" / "a" / "longer" / "path", None, QUICK)
    for name in ("hf_home", "tmp"):
        (tmp_path / "offline" / name).mkdir(parents=True)
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HOME": str(tmp_path / "offline" / "hf_home"),
               "TMPDIR": str(tmp_path / "offline" / "tmp")}
    with ThreadPoolExecutor(2) as pool:  # one torch thread each (TINY's runtime.threads)
        first, second = pool.map(repro, [plain, elsewhere], [{}, offline])
    return Runs(plain, first, second)


def test_differing_names_each_changed_or_missing_out():
    first = {"sft:models/sft": "a", "generate:data/pairs.parquet": "b", "prepare:models/tokenizer": "c"}
    assert differing(first, dict(first)) == []
    second = {**first, "sft:models/sft": "z"}
    del second["prepare:models/tokenizer"]
    assert differing(first, second) == ["prepare:models/tokenizer", "sft:models/sft"]


def test_two_environments_give_identical_out_hashes(runs):
    first, second = runs.first, runs.second
    assert {out.split(":")[0] for out in first} == COVERED
    changed = differing(first, second)
    assert not changed, f"outs whose hash depends on the environment: {changed}"


def file_hashes(root: Path, out: str) -> dict[str, str]:
    """md5 of each file of an out (a file, or a folder's files by relative path); {} if missing."""
    path = root / out
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}


def holding(folder: Path, secrets: tuple[str, ...]) -> list[str]:
    """The files under `folder` (.git and .dvc included) with one of `secrets` in them."""
    return sorted(str(p) for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                  and any(s.encode() in p.read_bytes() for s in secrets))


def remote_env(repo: Path, s3: S3Server, home: Path) -> dict[str, str]:
    """A user's shell for `repo`: the key pair in the environment, no AWS files, DVC's site cache in
    `home`; the endpoint only in .dvc/config (`endpointurl`), so a clone finds it there."""
    aws = {k: v for k, v in s3.env().items() if k != "AWS_ENDPOINT_URL"}
    return env_for(repo) | aws | {"AWS_CONFIG_FILE": str(home / "no-aws-config"),
                                  "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
                                  "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache")}


def test_a_fresh_clone_pulls_every_out_and_has_nothing_to_reproduce(runs, s3_server, tmp_path):
    copy, clone = runs.plain.path, tmp_path / "clone"
    bucket = s3_server.make_bucket("prefpipe-dvc-remote")
    # a user's repository has the project's .gitignore; make_repo copies only the code
    shutil.copy2(ROOT / ".gitignore", copy / ".gitignore")
    env = remote_env(copy, s3_server, tmp_path)
    run(copy, ["dvc", "remote", "add", "-d", "storage", f"s3://{bucket}/dvc"], env)
    run(copy, ["dvc", "remote", "modify", "storage", "endpointurl", s3_server.endpoint_url], env)
    run(copy, ["dvc", "push"], env)
    run(copy, ["git", "add", "-A"], env)
    run(copy, ["git", *GIT_USER, "commit", "-q", "-m", "a run"], env)
    tracked = set(run(copy, ["git", "ls-files"], env).split())
    lock = yaml.safe_load((copy / "dvc.lock").read_text())
    uncached = {out["path"] for spec in lock["stages"].values() for out in spec.get("outs", [])
                if not (copy / ".dvc" / "cache" / "files" / "md5" / out["md5"][:2] / out["md5"][2:]).exists()}
    assert {"dvc.lock", "dvc.yaml", "params.yaml", ".dvc/config", "tasks/prepare.py"} <= tracked
    assert uncached <= tracked, f"outs neither in git nor in DVC's cache: {sorted(uncached - tracked)}"

    run(tmp_path, ["git", "clone", "-q", str(copy), str(clone)], env)
    env = remote_env(clone, s3_server, tmp_path)
    run(clone, ["dvc", "pull"], env)
    assert json.loads(run(clone, ["dvc", "status", "--json"], env)) == {}
    reproduced = run(clone, ["dvc", "repro"], env)
    assert "Running stage" not in reproduced, reproduced
    assert "Data and pipelines are up to date." in reproduced, reproduced
    assert (clone / "dvc.lock").read_bytes() == (copy / "dvc.lock").read_bytes()
    for key in runs.first:
        out = key.split(":", 1)[1]
        assert file_hashes(copy, out), f"{out} missing in the copy"
        assert file_hashes(clone, out) == file_hashes(copy, out), f"{out} differs in the clone"

    secrets = (s3_server.access_key, s3_server.secret_key)
    assert "aws_access_key_id" not in (clone / ".dvc" / "config").read_text()
    for folder in (copy, clone, tmp_path / "dvc-site-cache"):
        assert not holding(folder, secrets), f"the test key pair written to {holding(folder, secrets)}"


LAX_GATES = {"kl_budget": 1000.0, "gates": {"win_rate_low": {"min": 0.0}, "accuracy_drop": {"max": 1.0}}}


def test_publish_uploads_the_version_to_s3_and_pull_restores_it(runs, s3_server, tmp_path):
    """After the clone test: the copy's publish, with artifacts.uri set and lax gates, uploads the
    version to moto; `prefpipe pull` restores it byte for byte elsewhere; the key pair appears in no
    file and no output."""
    copy = runs.plain
    bucket = s3_server.make_bucket("prefpipe-versions")
    params = copy.params()
    params["artifacts"]["uri"] = f"s3://{bucket}/team"
    params["evaluate"].update(LAX_GATES)
    (copy.path / "params.yaml").write_text(yaml.safe_dump(params))
    env = env_for(copy.path) | s3_server.env() | {"PREFPIPE_ROOT": str(copy.path)}
    output = run(copy.path, ["dvc", "repro", "publish"], env)
    assert "Running stage 'gate'" in output and "Running stage 'publish'" in output, output
    assert "Running stage 'train_policy'" not in output, output
    published = json.loads((copy.path / "metrics" / "publish.json").read_text())
    assert published["published"], published
    version = published["version"]
    assert f"s3://{bucket}/team/{version}/" in output

    pulled = tmp_path / "pulled"
    output += run(copy.path, ["prefpipe", "pull", version, "--dest", str(pulled)], env)
    local = copy.path / "store" / "versions" / version
    local_files = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    assert (pulled / version / "policy" / "model.safetensors").is_file()
    assert local_files == sorted(p.relative_to(pulled / version) for p in (pulled / version).rglob("*")
                                 if p.is_file())
    assert all((pulled / version / f).read_bytes() == (local / f).read_bytes() for f in local_files)

    secrets = (s3_server.access_key, s3_server.secret_key)
    assert not any(s in output for s in secrets)
    for folder in (copy.path, pulled):
        assert not holding(folder, secrets), f"the test key pair written to {holding(folder, secrets)}"
