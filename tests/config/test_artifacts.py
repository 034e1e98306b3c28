"""The `artifacts` section: off by default, an s3:// URI with a valid bucket or nothing, never
credentials (refused without repeating them), part sizes S3 accepts; errors name the dotted key."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from prefpipe.config import Params, ParamsError, load_params
from prefpipe.config.artifacts import ArtifactsParams, S3Location, parse_s3_uri

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, text: str) -> ArtifactsParams:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return load_params(path, check_paths=False).artifacts


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ParamsError) as err:
        load(tmp_path, text)
    return str(err.value)


def test_off_by_default_and_params_yaml_spells_out_every_knob():
    assert Params().artifacts == ArtifactsParams(uri="", multipart_threshold_mb=64, multipart_chunk_mb=16)
    assert load_params(REPO / "params.yaml", check_paths=False).artifacts == ArtifactsParams()
    written = yaml.safe_load((REPO / "params.yaml").read_text())["artifacts"]
    assert list(written) == [f.name for f in dataclasses.fields(ArtifactsParams)]


def test_every_key_is_read(tmp_path):
    artifacts = load(tmp_path, "artifacts: {uri: 's3://team-models/prefpipe/main', "
                               "multipart_threshold_mb: 8, multipart_chunk_mb: 5}\n")
    assert artifacts == ArtifactsParams("s3://team-models/prefpipe/main", 8, 5)


@pytest.mark.parametrize("uri, location", [
    ("s3://team-models", S3Location("team-models", "")),
    ("s3://team-models/", S3Location("team-models", "")),
    ("s3://team.models-2/prefpipe/main/", S3Location("team.models-2", "prefpipe/main/")),
])
def test_uris_parse_to_a_bucket_and_a_prefix(uri, location):
    assert parse_s3_uri(uri) == location
    assert location.uri == f"s3://{location.bucket}/{location.prefix}"


@pytest.mark.parametrize("uri, problem", [
    ("team-models/prefpipe", "artifacts.uri must be s3://BUCKET/PREFIX"),
    ("https://team-models.s3.amazonaws.com/x", "artifacts.uri must be s3://BUCKET/PREFIX"),
    ("s3://Team_Models/prefpipe", "artifacts.uri bucket 'Team_Models' is not a valid S3 bucket name"),
    ("s3://ab/prefpipe", "artifacts.uri bucket 'ab' is not a valid S3 bucket name"),
    ("s3://team..models/x", "is not a valid S3 bucket name"),
    ("s3://192.168.1.10/x", "is not a valid S3 bucket name"),
    ("s3://team-models/a//b", "artifacts.uri prefix 'a//b' has an empty, '.' or '..' segment"),
    ("s3://team-models/../other", "has an empty, '.' or '..' segment"),
])
def test_a_bad_uri_names_the_key(tmp_path, uri, problem):
    assert problem in error(tmp_path, f"artifacts: {{uri: '{uri}'}}\n")


@pytest.mark.parametrize("uri", [
    "s3://AKIAEXAMPLEKEY:wJalrXUtnFEMIsecret@team-models/prefpipe",
    "s3://wJalrXUtnFEMIsecret@team-models/prefpipe",
    "s3://team-models:9000/prefpipe",
])
def test_credentials_in_the_uri_are_refused_without_repeating_them(tmp_path, uri):
    message = error(tmp_path, f"artifacts: {{uri: '{uri}'}}\n")
    assert "artifacts.uri must not carry credentials" in message and "AWS_ACCESS_KEY_ID" in message
    assert "wJalrXUtnFEMIsecret" not in message and "AKIAEXAMPLEKEY" not in message


@pytest.mark.parametrize("tail", ["?X-Amz-Credential=AKIA&X-Amz-Signature=abc", "#secret"])
def test_a_query_string_or_fragment_is_refused(tmp_path, tail):
    message = error(tmp_path, f"artifacts: {{uri: 's3://team-models/prefpipe{tail}'}}\n")
    assert "artifacts.uri must not carry a query string or fragment" in message
    assert tail not in message


@pytest.mark.parametrize("knobs, problem", [
    ("multipart_chunk_mb: 4", "artifacts.multipart_chunk_mb must be >= 5 (S3's smallest part), got 4"),
    ("multipart_threshold_mb: 0", "artifacts.multipart_threshold_mb must be >= 1, got 0"),
    ("multipart_chunk_mb: 5.5", "'artifacts.multipart_chunk_mb' must be an integer"),
    ("bucket: team-models", "unknown key 'artifacts.bucket'"),
])
def test_part_sizes_and_unknown_keys(tmp_path, knobs, problem):
    assert problem in error(tmp_path, f"artifacts: {{{knobs}}}\n")
