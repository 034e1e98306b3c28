"""`prefpipe push` and `prefpipe pull` as a user runs them (`python -m flows.cli` in a subprocess,
PREFPIPE_ROOT a copy of the project made by make_repo), against moto's real S3 server and a store
whose registry holds a published version; credentials reach them only through the AWS environment."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from prefpipe.store import Store
from tests.conftest import ROOT, Repo, S3Server, env_for, make_repo

VERSION = "r1-00c0ffee"
FILES = {"policy/config.json": b'{"n_layer": 1}', "policy/model.safetensors": b"\x00weights" * 1000,
         "reward/config.json": b'{"num_labels": 1}', "reports/round.md": b"# Round 1\n",
         "metrics/evaluate.json": b'{"win_rate": 0.7}'}


def prefpipe(repo: Repo, aws: S3Server, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in env_for(repo.path).items() if not k.startswith("AWS_")}
    env.update({**aws.env(), "PREFPIPE_ROOT": str(repo.path), "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": str(repo.path / "no-aws-config"), "AWS_MAX_ATTEMPTS": "2",
                "AWS_SHARED_CREDENTIALS_FILE": str(repo.path / "no-aws-credentials")})
    result = subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert aws.secret_key not in result.stdout + result.stderr
    return result


def store_of(repo: Repo) -> Store:
    return Store(repo.path / repo.params()["store"]["path"], lock_timeout_s=20)


def publish_version(repo: Repo) -> Path:
    """Round 1 published as VERSION, its folder in store/versions/ as the publish stage leaves it."""
    folder = repo.path / "store" / "versions" / VERSION
    for key, data in FILES.items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(data)
    store = store_of(repo)
    store.registry.start_round(1, None, "hash", "digest", 10, 0, "new prompts", ["q1"], "run")
    store.registry.publish({"version": VERSION, "round": 1, "model_hash": "00c0ffee" * 8,
                            "artifact_uri": f"store/versions/{VERSION}"})
    return folder


def assert_restored(folder: Path) -> None:
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(FILES)
    for key, data in FILES.items():
        assert (folder / key).read_bytes() == data, key


@pytest.fixture
def bucket(s3_server) -> str:
    return s3_server.make_bucket(f"prefpipe-cli-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def repo(tmp_path, bucket) -> Repo:
    repo = make_repo(tmp_path / "repo", override={"artifacts": {"uri": f"s3://{bucket}/models"}})
    publish_version(repo)
    return repo


def test_push_then_pull_restores_the_version_and_the_registry_records_the_copy(repo, bucket, s3_server):
    uri = f"s3://{bucket}/models/{VERSION}/"
    pushed = prefpipe(repo, s3_server, "push", VERSION)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.startswith(f"pushed {VERSION} to {uri}: 5 files sent (") and \
        pushed.stdout.endswith("MB), 0 already there\n")
    assert store_of(repo).registry.version(VERSION)["remote_uri"] == uri
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=f"models/{VERSION}/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(
        f"models/{VERSION}/{key}" for key in [*FILES, "manifest.json"])

    again = prefpipe(repo, s3_server, "push", VERSION)
    assert again.returncode == 0 and "0 files sent (0.0 MB), 5 already there" in again.stdout

    # the registry's record wins over a changed artifacts.uri
    repo.set_params({"artifacts": {"uri": f"s3://{bucket}/elsewhere"}})
    local = repo.path / "store" / "versions" / VERSION
    shutil.rmtree(local)
    pulled = prefpipe(repo, s3_server, "pull", VERSION)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout == (f"pulled {VERSION} from {uri} to {local}: 5 files (0.0 MB), checksums "
                             "verified\n")
    assert_restored(local)
    present = prefpipe(repo, s3_server, "pull", VERSION)
    assert present.returncode == 0 and present.stdout.startswith(f"{VERSION} is already at {local}")


def test_a_fresh_machine_pulls_from_artifacts_uri(repo, bucket, s3_server, tmp_path):
    assert prefpipe(repo, s3_server, "push", VERSION).returncode == 0
    fresh = make_repo(tmp_path / "fresh", override={"artifacts": {"uri": f"s3://{bucket}/models/"}})
    dest = tmp_path / "elsewhere"
    pulled = prefpipe(fresh, s3_server, "pull", VERSION, "--dest", str(dest))
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.rstrip().endswith("checksums verified; this store's registry does not know it")
    assert_restored(dest / VERSION)
    assert [p.name for p in dest.iterdir()] == [VERSION]
    assert not (fresh.path / "store" / "versions").exists()


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    return result.stderr.strip()


def test_what_a_user_can_get_wrong_is_one_line_and_exit_2(repo, bucket, s3_server, tmp_path):
    assert one_line_error(prefpipe(repo, s3_server, "push", "r9-00000000")) == (
        f"error: unknown model version 'r9-00000000'; known versions: {VERSION}")
    assert "no such version; complete versions under" in one_line_error(
        prefpipe(repo, s3_server, "pull", "r9-00000000", "--dest", str(tmp_path / "x")))

    repo.set_params({"artifacts": {"uri": "s3://prefpipe-no-such-bucket/models"}})
    assert one_line_error(prefpipe(repo, s3_server, "push", VERSION)) == (
        f"error: upload to s3://prefpipe-no-such-bucket/models/{VERSION}/: bucket 'prefpipe-no-such-bucket' "
        f"does not exist at {s3_server.endpoint_url}; create it or fix artifacts.uri")

    repo.set_params({"artifacts": {"uri": "s3://AKIAX:hunter2@prefpipe-bucket/models"}})
    message = one_line_error(prefpipe(repo, s3_server, "push", VERSION))
    assert "artifacts.uri must not carry credentials" in message and "hunter2" not in message

    repo.set_params({"artifacts": {"uri": ""}})
    assert one_line_error(prefpipe(repo, s3_server, "push", VERSION)) == (
        "error: artifacts.uri is empty in params.yaml: set it to s3://BUCKET/PREFIX to push")
    fresh = make_repo(tmp_path / "fresh")
    assert "the registry records no copy of it in an artifact store and artifacts.uri is empty" in \
        one_line_error(prefpipe(fresh, s3_server, "pull", VERSION))


def test_push_refuses_a_version_whose_folder_is_gone(repo, s3_server):
    shutil.rmtree(repo.path / "store" / "versions" / VERSION)
    message = one_line_error(prefpipe(repo, s3_server, "push", VERSION))
    folder = os.path.join(repo.path, "store", "versions", VERSION)
    assert message == f"error: {folder}: no such file or folder"
