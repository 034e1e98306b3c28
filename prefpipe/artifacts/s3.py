"""The S3 artifact store: each published model version under `s3://BUCKET/PREFIX/<version>/`.

A version's files keep their relative paths (policy/..., reward/..., reports/..., metrics/...); each
object carries its sha256 in its metadata (x-amz-meta-sha256), and `manifest.json` (every file's key,
size and sha256) is written last. A version exists once its manifest does: `versions()` lists only
those and `download_version` refuses one without it ("incomplete upload"), so a reader never sees
half a version. An upload is idempotent: a file whose object already has its sha256 is skipped, so
rerunning one that failed midway sends only what is missing. Files of `multipart_threshold_mb` or
more go up in parts of `multipart_chunk_mb`. A download lands in a staging folder beside its
destination, every file checked against the manifest, then is renamed: complete or absent.

Credentials, region and endpoint come only from boto3's default chain: the AWS_* environment
(AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3 for an S3-compatible server such as MinIO), AWS_PROFILE and
~/.aws/config and credentials, instance and container roles; never from params.yaml, never logged.
Throttling (SlowDown, 503) and transient errors (timeouts, dropped connections, 500s) are retried by
botocore with exponential backoff: retry mode AWS_RETRY_MODE (default standard), AWS_MAX_ATTEMPTS
attempts in all (default 5). What a user can fix (no credentials, wrong ones, no such bucket, an
endpoint that does not answer) is an `ArtifactStoreError` of one line naming the bucket."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from prefpipe.artifacts.local import sha256_file
from prefpipe.artifacts.s3_errors import NOT_FOUND, TRANSLATED, ArtifactStoreError, code, one_line
from prefpipe.config.artifacts import parse_s3_uri
from prefpipe.progress import Progress

__all__ = ["ArtifactStoreError", "S3ArtifactStore", "UploadResult", "retry_config"]

MANIFEST = "manifest.json"
SHA256 = "sha256"  # the object metadata key holding a file's digest
MB = 1024 * 1024
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class UploadResult:
    uri: str                # the version's s3:// URI
    uploaded: int           # files sent
    skipped: int            # files whose object already had their sha256
    bytes_sent: int
    manifest_written: bool  # False when the same manifest was there already


def retry_config() -> Config:
    """botocore's retries as the AWS environment asks: AWS_RETRY_MODE, AWS_MAX_ATTEMPTS (in all)."""
    mode = os.environ.get("AWS_RETRY_MODE") or "standard"
    raw = os.environ.get("AWS_MAX_ATTEMPTS") or "5"
    if mode not in ("legacy", "standard", "adaptive"):
        raise ArtifactStoreError(f"AWS_RETRY_MODE must be legacy, standard or adaptive, got {mode!r}")
    if not raw.isdigit() or int(raw) < 1:
        raise ArtifactStoreError(f"AWS_MAX_ATTEMPTS must be an integer >= 1, got {raw!r}")
    return Config(retries={"mode": mode, "total_max_attempts": int(raw)})


class S3ArtifactStore:
    """Model versions under one `s3://BUCKET/PREFIX`; see the module's docstring."""

    def __init__(self, uri: str, multipart_threshold_mb: int = 64, multipart_chunk_mb: int = 16):
        try:
            self.location = parse_s3_uri(uri)
        except ValueError as err:
            raise ArtifactStoreError(f"artifact store URI {err}") from None
        self.bucket, self.prefix, self.uri = self.location.bucket, self.location.prefix, self.location.uri
        try:
            self.client = boto3.session.Session().client("s3", config=retry_config())
        except ValueError:  # e.g. botocore's "Invalid endpoint: URL": not repeated, it may hold a password
            raise ArtifactStoreError(f"{self.uri}: the S3 endpoint the AWS environment names "
                                     "(AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3 or endpoint_url in "
                                     "~/.aws/config) is not a valid URL") from None
        self.transfer = TransferConfig(multipart_threshold=multipart_threshold_mb * MB,
                                       multipart_chunksize=multipart_chunk_mb * MB)

    def version_uri(self, version: str) -> str:
        return f"{self.uri}{_checked_version(version)}/"

    def versions(self) -> list[str]:
        """The complete versions (those with a manifest), sorted."""
        with self._errors(f"listing {self.uri}"):
            self._check_bucket()
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, Delimiter="/")
            names = [p["Prefix"][len(self.prefix):].rstrip("/")
                     for page in pages for p in page.get("CommonPrefixes", [])]
            return sorted(n for n in names if VERSION.fullmatch(n) and self._object_sha(n, MANIFEST, None)
                          is not None)

    def upload_version(self, version: str, files: Mapping[str, Path], progress: bool = True) -> UploadResult:
        """Upload `files` (relative key -> local file) as `version`, then its manifest. Objects that
        already hold a file's sha256 are skipped; a changed version loses its old manifest first, so
        it reads as incomplete until the new one is written."""
        uri = self.version_uri(version)
        for key in files:
            _checked_key(key)
        with self._errors(f"upload to {uri}"):
            self._check_bucket()
            entries = {key: {"sha256": sha256_file(path), "size": path.stat().st_size}
                       for key, path in sorted(files.items())}
            manifest = json.dumps({"version": version, "files": entries}, indent=2, sort_keys=True).encode()
            to_send = [k for k, e in entries.items()
                       if self._object_sha(version, k, e["size"]) != e["sha256"]]
            old = self._read(version, MANIFEST)
            if old is not None and old != manifest:
                self.client.delete_object(Bucket=self.bucket, Key=self._key(version, MANIFEST))
            total = sum(entries[k]["size"] for k in to_send)
            with _Meter(total, f"upload {version}", progress and bool(to_send)) as meter:
                for key in to_send:
                    self.client.upload_file(str(files[key]), self.bucket, self._key(version, key),
                                            ExtraArgs={"Metadata": {SHA256: entries[key]["sha256"]}},
                                            Config=self.transfer, Callback=meter.update)
            if old != manifest:
                self.client.put_object(Bucket=self.bucket, Key=self._key(version, MANIFEST), Body=manifest,
                                       ContentType="application/json",
                                       Metadata={SHA256: hashlib.sha256(manifest).hexdigest()})
        return UploadResult(uri, len(to_send), len(entries) - len(to_send), total, old != manifest)

    def download_version(self, version: str, dest: Path, progress: bool = True) -> dict:
        """Download a complete version into `dest` (which must not exist), every file checked
        against the manifest; returns the manifest. Staged beside `dest`, then renamed."""
        uri = self.version_uri(version)
        if dest.exists():
            raise ArtifactStoreError(f"{dest}: already exists; remove it or pull to another folder")
        with self._errors(f"download of {uri}"):
            self._check_bucket()
            manifest = self._manifest(version)
            files = manifest["files"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
            try:
                total = sum(int(entry["size"]) for entry in files.values())
                with _Meter(total, f"download {version}", progress) as meter:
                    for key, entry in sorted(files.items()):
                        self._fetch(version, key, entry["sha256"], staging / _checked_key(key), meter)
                staging.rename(dest)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return manifest

    def _fetch(self, version: str, key: str, sha256: str, target: Path, meter: _Meter) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, self._key(version, key), str(target),
                                      Config=self.transfer, Callback=meter.update)
        except ClientError as err:
            if code(err) in NOT_FOUND:
                raise ArtifactStoreError(f"{self.version_uri(version)}{key}: missing, though the manifest "
                                         "lists it; push the version again") from err
            raise
        found = sha256_file(target)
        if found != sha256:
            raise ArtifactStoreError(
                f"{self.version_uri(version)}{key}: sha256 {found[:16]}... is not the manifest's "
                f"{sha256[:16]}...: the object changed after upload (tampered or corrupted); nothing "
                f"was restored; push the version again")

    def _manifest(self, version: str) -> dict:
        raw = self._read(version, MANIFEST)
        uri = self.version_uri(version)
        if raw is None:
            prefix = self._key(version, "")
            if self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"):
                raise ArtifactStoreError(f"{uri}: incomplete upload (files but no {MANIFEST}); run "
                                         f"`prefpipe push {version}` where it was published")
            raise ArtifactStoreError(f"{uri}: no such version; complete versions under {self.uri}: "
                                     f"{', '.join(self.versions()) or 'none'}")
        try:
            manifest = json.loads(raw)
            assert isinstance(manifest["files"], dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise ArtifactStoreError(f"{uri}{MANIFEST}: not a manifest this version wrote; push the "
                                     "version again") from None
        return manifest

    def _key(self, version: str, key: str) -> str:
        return f"{self.prefix}{version}/{key}"

    def _check_bucket(self) -> None:
        """head_bucket: a missing bucket or wrong credentials fail here, named, before any work."""
        self.client.head_bucket(Bucket=self.bucket)

    def _object_sha(self, version: str, key: str, size: int | None) -> str | None:
        """The sha256 an object carries (None: no object, or not of `size` bytes when given)."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(version, key))
        except ClientError as err:
            if code(err) in NOT_FOUND:
                return None
            raise
        if size is not None and head["ContentLength"] != size:
            return None
        return head.get("Metadata", {}).get(SHA256, "")

    def _read(self, version: str, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(version, key))["Body"].read()
        except ClientError as err:
            if code(err) in NOT_FOUND:
                return None
            raise

    @contextmanager
    def _errors(self, where: str) -> Iterator[None]:
        """boto3's and botocore's errors as one line starting with `where` (s3_errors.py)."""
        try:
            yield
        except TRANSLATED as err:
            raise one_line(err, where, self.bucket, self._endpoint()) from None

    def _endpoint(self) -> str:
        """The endpoint URL, without any user:password@ it was given."""
        url = urlsplit(self.client.meta.endpoint_url)
        return url._replace(netloc=url.netloc.rpartition("@")[2]).geturl()


class _Meter(Progress):
    """Progress in bytes, updated by boto3's callbacks from its transfer threads."""

    def __init__(self, total: int, desc: str, enabled: bool):
        super().__init__(total, desc, unit="B", every_seconds=10.0, enabled=enabled)
        self.lock = threading.Lock()

    def update(self, n: int = 1, **stats: float) -> None:
        with self.lock:
            super().update(n, **stats)


def _checked_version(version: str) -> str:
    if not VERSION.fullmatch(version):
        raise ArtifactStoreError(f"version {version!r}: not a version id (letters, digits, '.', '_', '-')")
    return version


def _checked_key(key: str) -> str:
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts or "\\" in key or key == MANIFEST:
        raise ArtifactStoreError(f"{key!r}: not a relative file key of a version (no '..', no leading "
                                 f"'/', not {MANIFEST})")
    return key
