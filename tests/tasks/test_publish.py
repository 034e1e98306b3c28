"""The publish stage's recipe with the artifact store: the version's folder holds both models and the
round's reports and metrics; with `artifacts.uri` set the same files go to moto's real S3 server and
the registry records both places; a failed upload registers nothing, and a rerun completes it."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import struct
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from prefpipe.artifacts.local import folder_files
from prefpipe.artifacts.s3 import ArtifactStoreError, S3ArtifactStore
from prefpipe.config import Params
from prefpipe.config.artifacts import ArtifactsParams
from prefpipe.store import Store, write_parquet
from tasks import paths
from tasks.publish import publish

EXPECTED = ["metrics/evaluate.json", "metrics/gates.json", "metrics/reward.json", "policy/config.json",
            "policy/model.safetensors", "reports/evaluation.md", "reports/round.md", "reward/config.json"]


@pytest.fixture
def workspace(tmp_path, monkeypatch, s3_server) -> Store:
    """Round 1 after its gate passed, as the publish stage finds it (cwd: the project), with the AWS
    environment pointing at moto and nothing else."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in {**s3_server.env(), "AWS_CONFIG_FILE": str(tmp_path / "none"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                        "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PREFPIPE_PARAMS", raising=False)
    Path("params.yaml").write_text("seed: 0\n")
    for model, body in ((paths.POLICY_MODEL, safetensors(b"weights!")), (paths.REWARD_MODEL, None)):
        model.mkdir(parents=True)
        (model / "config.json").write_text(json.dumps({"model": model.name}))
        if body:
            (model / "model.safetensors").write_bytes(body)
    paths.ROUND.mkdir(parents=True)
    paths.ROUND_INFO.write_text(json.dumps({"round": 1, "generator_version": "sft", "reason": "test"}))
    paths.ROUND_PROMPTS.write_bytes(b"prompts")
    paths.ROUND_HISTORY.write_bytes(b"history")
    write_parquet(pa.Table.from_pylist([{"source": "critic", "round": 1}]), paths.PREFERENCES)
    for name, payload in (("gates", {"passed": True}), ("evaluate", {"win_rate": 0.7}),
                          ("reward", {"val_gold_accuracy": 0.8}), ("publish", {"stale": True})):
        (paths.METRICS / f"{name}.json").parent.mkdir(exist_ok=True)
        (paths.METRICS / f"{name}.json").write_text(json.dumps(payload))
    paths.REPORT.parent.mkdir(exist_ok=True)
    paths.REPORT.write_text("# Evaluation\n")
    store = Store(Path("store/prefpipe.duckdb"), lock_timeout_s=20)
    store.registry.start_round(1, "sft", "", "", 1, 0, "test", ["q1"], "")
    return store


def safetensors(data: bytes) -> bytes:
    """A safetensors file of one float32 tensor holding `data` (a multiple of 4 bytes)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [len(data) // 4],
                               "data_offsets": [0, len(data)]}}).encode()
    return struct.pack("<Q", len(header)) + header + data


def params_with(uri: str) -> Params:
    return dataclasses.replace(Params(), artifacts=ArtifactsParams(uri=uri, multipart_chunk_mb=5))


def test_without_an_artifact_store_the_version_stays_local(workspace):
    result = publish(params_with(""), workspace)
    row = workspace.registry.version(result["version"])
    assert row["artifact_uri"] == f"store/versions/{result['version']}" and row["remote_uri"] is None
    assert sorted(folder_files(Path(row["artifact_uri"]))) == EXPECTED


def test_publish_uploads_the_version_and_records_both_places(workspace, s3_server, caplog):
    bucket = s3_server.make_bucket(f"prefpipe-pub-{uuid.uuid4().hex[:10]}")
    caplog.set_level(logging.INFO, logger="prefpipe")
    result = publish(params_with(f"s3://{bucket}/team"), workspace)
    version = result["version"]
    uri = f"s3://{bucket}/team/{version}/"
    row = workspace.registry.version(version)
    assert (row["artifact_uri"], row["remote_uri"]) == (f"store/versions/{version}", uri)
    assert workspace.registry.current()["version"] == version
    assert f"uploaded {version} to {uri}: 8 files sent" in caplog.text and f"and {uri}" in caplog.text
    assert s3_server.secret_key not in caplog.text and s3_server.access_key not in caplog.text

    store = S3ArtifactStore(f"s3://{bucket}/team")
    assert store.versions() == [version]
    pulled = Path("pulled")
    store.download_version(version, pulled, progress=False)
    local = folder_files(Path(row["artifact_uri"]))
    assert sorted(folder_files(pulled)) == EXPECTED == sorted(local)
    assert all((pulled / key).read_bytes() == path.read_bytes() for key, path in local.items())
    assert f"**published {version}**" in (pulled / "reports" / "round.md").read_text()


def test_a_failed_upload_registers_nothing_and_a_rerun_completes(workspace, s3_server):
    bucket = f"prefpipe-pub-{uuid.uuid4().hex[:10]}"
    with pytest.raises(ArtifactStoreError, match=f"bucket '{bucket}' does not exist"):
        publish(params_with(f"s3://{bucket}/team"), workspace)
    assert workspace.registry.versions() == [] and workspace.registry.last_round()["status"] == "running"
    s3_server.make_bucket(bucket)
    version = publish(params_with(f"s3://{bucket}/team"), workspace)["version"]
    assert workspace.registry.version(version)["remote_uri"] == f"s3://{bucket}/team/{version}/"
    assert workspace.registry.last_round()["status"] == "published"
