"""The S3 artifact store against moto's real S3 server on loopback (tests/conftest.py `s3_server`):
multipart round trips with checksums, a failure midway that leaves no version, idempotent re-uploads,
tampering caught on download, and the one-line errors for what a user can get wrong (wrong or no
credentials, a missing bucket, an endpoint that does not answer), none of which repeats a secret."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.exceptions import ConnectionClosedError

from prefpipe.artifacts.local import folder_files
from prefpipe.artifacts.s3 import ArtifactStoreError, S3ArtifactStore
from tests.conftest import S3Server, free_port

VERSION = "r1-0123abcd"
BIG = 11 * 1024 * 1024  # three parts of 5 MB (moto, as S3, refuses smaller parts but the last)
WRITES = ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "DeleteObject")


def isolate_aws(monkeypatch, tmp_path: Path, env: dict[str, str]) -> None:
    """Only `env` reaches boto3: no ~/.aws files, profile, instance metadata or retry settings."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def aws(monkeypatch, tmp_path, s3_server) -> S3Server:
    isolate_aws(monkeypatch, tmp_path, {**s3_server.env(), "AWS_MAX_ATTEMPTS": "3"})
    return s3_server


@pytest.fixture
def bucket(aws) -> str:
    return aws.make_bucket(f"prefpipe-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def version_dir(tmp_path) -> Path:
    """A version's folder as publish writes it, with one model file big enough to go in parts."""
    folder = tmp_path / "versions" / VERSION
    files = {"policy/config.json": b'{"n_layer": 1}', "policy/model.safetensors": os.urandom(BIG),
             "reward/config.json": b'{"num_labels": 1}', "reports/round.md": b"# Round 1\n",
             "metrics/evaluate.json": b'{"win_rate": 0.7}'}
    for key, data in files.items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(data)
    return folder


def store_at(bucket: str) -> S3ArtifactStore:
    return S3ArtifactStore(f"s3://{bucket}/models/prefpipe", multipart_threshold_mb=5, multipart_chunk_mb=5)


def count_calls(store: S3ArtifactStore, operations=WRITES) -> dict[str, int]:
    """Live counts of the store client's calls of each operation."""
    counts = dict.fromkeys(operations, 0)

    def count(model, **_):
        counts[model.name] += 1

    for operation in operations:
        store.client.meta.events.register(f"before-call.s3.{operation}", count)
    return counts


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_same_tree(left: Path, right: Path) -> None:
    assert sorted(folder_files(left)) == sorted(folder_files(right))
    for key, path in folder_files(left).items():
        assert (right / key).read_bytes() == path.read_bytes(), key


def test_round_trip_in_parts_with_checksums(bucket, version_dir, tmp_path, aws):
    store = store_at(bucket)
    calls = count_calls(store)
    sent = store.upload_version(VERSION, folder_files(version_dir), progress=False)
    assert (sent.uri, sent.uploaded, sent.skipped, sent.manifest_written) == (
        f"s3://{bucket}/models/prefpipe/{VERSION}/", 5, 0, True)
    assert sent.bytes_sent == sum(p.stat().st_size for p in folder_files(version_dir).values())
    assert calls["UploadPart"] == 3 and calls["CompleteMultipartUpload"] == 1
    assert calls["PutObject"] == 5  # four small files, then the manifest

    client = aws.client()
    prefix = f"models/prefpipe/{VERSION}/"
    big = client.head_object(Bucket=bucket, Key=prefix + "policy/model.safetensors")
    assert big["ETag"].strip('"').endswith("-3")  # a multipart object's ETag counts its parts
    manifest = json.loads(client.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    for key, path in folder_files(version_dir).items():
        assert manifest["files"][key] == {"sha256": sha(path), "size": path.stat().st_size}
        head = client.head_object(Bucket=bucket, Key=prefix + key)
        assert head["Metadata"]["sha256"] == sha(path)
    assert store.versions() == [VERSION]

    restored = tmp_path / "restored" / VERSION
    assert store.download_version(VERSION, restored, progress=False)["files"] == manifest["files"]
    assert_same_tree(version_dir, restored)
    assert [p.name for p in restored.parent.iterdir()] == [VERSION]  # no staging folder left
    with pytest.raises(ArtifactStoreError, match="already exists"):
        store.download_version(VERSION, restored)


def test_a_failure_midway_leaves_no_version_and_a_rerun_sends_only_the_rest(bucket, version_dir, tmp_path):
    store = store_at(bucket)
    failing = "reports/round.md"  # sorted keys: metrics/, policy/ x2 go first, reward/ after
    attempts = []

    def drop_connection(request, **_):
        if request.url.endswith(failing):
            attempts.append(request.url)
            raise ConnectionClosedError(endpoint_url=request.url)

    store.client.meta.events.register("before-send.s3.PutObject", drop_connection)
    with pytest.raises(ArtifactStoreError) as err:
        store.upload_version(VERSION, folder_files(version_dir), progress=False)
    message = str(err.value)
    assert "\n" not in message and f"s3://{bucket}/models/prefpipe/{VERSION}/" in message
    assert "ConnectionClosedError" in message
    assert len(attempts) == 3  # AWS_MAX_ATTEMPTS: botocore retried the dropped connection twice

    assert store.versions() == []
    target = tmp_path / "pulled" / VERSION
    with pytest.raises(ArtifactStoreError, match="incomplete upload"):
        store.download_version(VERSION, target, progress=False)
    assert not target.parent.exists() or list(target.parent.iterdir()) == []

    store.client.meta.events.unregister("before-send.s3.PutObject", drop_connection)
    calls = count_calls(store)
    again = store.upload_version(VERSION, folder_files(version_dir), progress=False)
    assert (again.uploaded, again.skipped, again.manifest_written) == (2, 3, True)
    assert calls["UploadPart"] == 0 and calls["PutObject"] == 3  # round.md, reward's config, manifest
    assert store.versions() == [VERSION]
    store.download_version(VERSION, target, progress=False)
    assert_same_tree(version_dir, target)


def test_uploading_a_complete_version_again_sends_nothing(bucket, version_dir):
    store = store_at(bucket)
    store.upload_version(VERSION, folder_files(version_dir), progress=False)
    calls = count_calls(store)
    again = store.upload_version(VERSION, folder_files(version_dir), progress=False)
    assert (again.uploaded, again.skipped, again.bytes_sent, again.manifest_written) == (0, 5, 0, False)
    assert calls == dict.fromkeys(WRITES, 0)


def test_a_changed_file_is_sent_again_and_the_manifest_follows(bucket, version_dir, tmp_path):
    store = store_at(bucket)
    store.upload_version(VERSION, folder_files(version_dir), progress=False)
    (version_dir / "reports" / "round.md").write_text("# Round 1, rewritten\n")
    again = store.upload_version(VERSION, folder_files(version_dir), progress=False)
    assert (again.uploaded, again.skipped, again.manifest_written) == (1, 4, True)
    store.download_version(VERSION, tmp_path / "pulled", progress=False)
    assert (tmp_path / "pulled" / "reports" / "round.md").read_text() == "# Round 1, rewritten\n"


def test_a_tampered_object_is_caught_on_download(bucket, version_dir, tmp_path, aws):
    store = store_at(bucket)
    store.upload_version(VERSION, folder_files(version_dir), progress=False)
    key = f"models/prefpipe/{VERSION}/reward/config.json"
    original = aws.client().head_object(Bucket=bucket, Key=key)["Metadata"]
    aws.client().put_object(Bucket=bucket, Key=key, Body=b'{"num_labels": 2}', Metadata=original)
    target = tmp_path / "pulled" / VERSION
    with pytest.raises(ArtifactStoreError) as err:
        store.download_version(VERSION, target, progress=False)
    assert "reward/config.json" in str(err.value) and "tampered or corrupted" in str(err.value)
    assert not target.exists() and list(target.parent.iterdir()) == []  # nothing half-restored


def test_versions_lists_only_complete_versions(bucket, version_dir, aws):
    store = store_at(bucket)
    assert store.versions() == []
    store.upload_version(VERSION, folder_files(version_dir), progress=False)
    store.upload_version("r2-feedbeef", {"policy/config.json": version_dir / "policy" / "config.json"},
                         progress=False)
    aws.client().put_object(Bucket=bucket, Key="models/prefpipe/r3-halfdone/policy/config.json", Body=b"{}")
    assert store.versions() == [VERSION, "r2-feedbeef"]
    with pytest.raises(ArtifactStoreError, match=f"no such version; complete versions under .*: {VERSION}, "
                                                 "r2-feedbeef"):
        store.download_version("r9-00000000", version_dir.parent / "r9", progress=False)


def test_a_missing_bucket_is_one_line_naming_it(aws):
    store = S3ArtifactStore("s3://prefpipe-no-such-bucket/models")
    with pytest.raises(ArtifactStoreError) as err:
        store.versions()
    assert str(err.value) == ("listing s3://prefpipe-no-such-bucket/models/: bucket "
                              f"'prefpipe-no-such-bucket' does not exist at {aws.endpoint_url}; create "
                              "it or fix artifacts.uri")


def test_no_credentials_is_one_line(monkeypatch, tmp_path, s3_server):
    isolate_aws(monkeypatch, tmp_path, {"AWS_ENDPOINT_URL": s3_server.endpoint_url,
                                        "AWS_DEFAULT_REGION": "us-east-1"})
    with pytest.raises(ArtifactStoreError) as err:
        S3ArtifactStore("s3://prefpipe-any/models").versions()
    assert str(err.value).startswith("listing s3://prefpipe-any/models/: no AWS credentials found; set "
                                     "AWS_ACCESS_KEY_ID")


def test_an_endpoint_that_does_not_answer_is_one_line(monkeypatch, tmp_path, s3_server):
    nobody = f"http://127.0.0.1:{free_port()}"
    isolate_aws(monkeypatch, tmp_path,
                {**s3_server.env(), "AWS_ENDPOINT_URL": nobody, "AWS_MAX_ATTEMPTS": "2"})
    with pytest.raises(ArtifactStoreError) as err:
        S3ArtifactStore("s3://prefpipe-any/models").upload_version(VERSION, {}, progress=False)
    assert str(err.value).startswith(f"upload to s3://prefpipe-any/models/{VERSION}/: the S3 endpoint "
                                     f"{nobody} does not answer (EndpointConnectionError")


@pytest.fixture(scope="module")
def strict_s3(tmp_path_factory):
    """A second moto server that checks signatures against its IAM users (moto's auth switched on
    after set-up): one user may use one bucket; any other key or secret is refused."""
    server = S3Server(tmp_path_factory.mktemp("strict-s3"))
    try:
        iam = boto3.client("iam", endpoint_url=server.endpoint_url, region_name="us-east-1",
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="publisher")
        iam.put_user_policy(UserName="publisher", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="publisher")["AccessKey"]
        server.make_bucket("prefpipe-strict")
        httpx.post(f"{server.endpoint_url}/moto-api/reset-auth", content=b"0").raise_for_status()
        yield server, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        server.stop()


@pytest.mark.parametrize("wrong", ["secret", "key"])
def test_wrong_credentials_are_one_line_without_the_secret(monkeypatch, tmp_path, strict_s3, wrong, caplog):
    server, key_id, secret = strict_s3
    base = {"AWS_ENDPOINT_URL": server.endpoint_url, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_MAX_ATTEMPTS": "1"}
    isolate_aws(monkeypatch, tmp_path, {**base, "AWS_ACCESS_KEY_ID": key_id,
                                        "AWS_SECRET_ACCESS_KEY": secret})
    assert S3ArtifactStore("s3://prefpipe-strict/models").versions() == []  # the right pair works

    bad_secret = "prefpipe-wrong-secret-0123456789"
    bad_key = "AKIAPREFPIPEWRONGKEY" if wrong == "key" else key_id
    isolate_aws(monkeypatch, tmp_path, {**base, "AWS_ACCESS_KEY_ID": bad_key,
                                        "AWS_SECRET_ACCESS_KEY": bad_secret})
    caplog.set_level(logging.DEBUG, logger="prefpipe")
    with pytest.raises(ArtifactStoreError) as err:
        S3ArtifactStore("s3://prefpipe-strict/models").upload_version(VERSION, {}, progress=False)
    message = str(err.value)
    assert message.startswith(f"upload to s3://prefpipe-strict/models/{VERSION}/: access denied (403); check "
                              "the AWS credentials") and "bucket 'prefpipe-strict'" in message
    assert bad_secret not in message + caplog.text and secret not in message + caplog.text


@pytest.mark.parametrize("uri, problem", [
    ("prefpipe-bucket/models", "must be s3://BUCKET/PREFIX"),
    ("s3://Prefpipe_Bucket/models", "not a valid S3 bucket name"),
    ("s3://AKIA:hunter2@prefpipe-bucket/models", "must not carry credentials"),
])
def test_a_bad_uri_is_refused_before_any_request(aws, uri, problem):
    with pytest.raises(ArtifactStoreError, match=problem) as err:
        S3ArtifactStore(uri)
    assert "hunter2" not in str(err.value)


def test_a_version_or_key_that_would_leave_the_prefix_is_refused(bucket, version_dir):
    store = store_at(bucket)
    with pytest.raises(ArtifactStoreError, match="not a version id"):
        store.version_uri("../r1")
    with pytest.raises(ArtifactStoreError, match="not a relative file key"):
        store.upload_version(VERSION, {"../escape.json": version_dir / "policy" / "config.json"},
                             progress=False)
