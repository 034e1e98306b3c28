"""Params of the artifact store (`artifacts` section) and the one parser of its s3:// URI.

A published version also goes to `s3://BUCKET/PREFIX/<version>/` when `artifacts.uri` is set
(prefpipe/artifacts/s3.py). The URI names a place, never a key: credentials and the endpoint come
from the AWS environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_ENDPOINT_URL...), so a URI carrying
a user, a password or a query string is refused, without echoing it."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from prefpipe.config.knobs import knob

S3_MIN_PART_MB = 5  # S3 refuses smaller parts (but the last) of a multipart upload
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's general purpose bucket names
SCHEME = "s3://"


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix ('' or ending in '/') under which versions live."""
    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}"


def parse_s3_uri(uri: str) -> S3Location:
    """`s3://BUCKET[/PREFIX][/]` as a location; ValueError saying what is wrong otherwise. The message
    repeats the URI only when it carries no credentials."""
    if not uri.startswith(SCHEME):
        raise ValueError(f"must be s3://BUCKET/PREFIX (or '' for no artifact store), got {uri!r}")
    rest = uri[len(SCHEME):]
    authority = rest.split("/", 1)[0]
    if "@" in authority or ":" in authority:
        raise ValueError("must not carry credentials or a port (user:password@, :port): credentials "
                         "come from the AWS environment (AWS_ACCESS_KEY_ID / AWS_PROFILE) and the "
                         "endpoint from AWS_ENDPOINT_URL")
    if "?" in rest or "#" in rest:
        raise ValueError("must not carry a query string or fragment (?... or #...): credentials and "
                         "options come from the AWS environment, never from params.yaml")
    bucket, _, path = rest.partition("/")
    if not BUCKET.fullmatch(bucket) or ".." in bucket or _is_ip(bucket):
        raise ValueError(f"bucket {bucket!r} is not a valid S3 bucket name (3-63 characters: lowercase "
                         f"letters, digits, '.' and '-', starting and ending with a letter or digit)")
    parts = path.strip("/").split("/") if path.strip("/") else []
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"prefix {path!r} has an empty, '.' or '..' segment")
    return S3Location(bucket, "".join(f"{part}/" for part in parts))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ArtifactsParams:
    uri: str = knob("", "s3://BUCKET/PREFIX: the publish stage also uploads each version to PREFIX/"
                        "<version>/ ('' = the local store only); credentials and endpoint come from "
                        "the AWS environment, never from here")
    multipart_threshold_mb: int = knob(64, "files at least this large upload in parts")
    multipart_chunk_mb: int = knob(16, f"part size of a multipart upload (S3's minimum: {S3_MIN_PART_MB})")

    def validate(self) -> str | None:
        if self.multipart_threshold_mb < 1:
            return f"multipart_threshold_mb must be >= 1, got {self.multipart_threshold_mb}"
        if self.multipart_chunk_mb < S3_MIN_PART_MB:
            return f"multipart_chunk_mb must be >= {S3_MIN_PART_MB} (S3's smallest part), got " \
                   f"{self.multipart_chunk_mb}"
        if not self.uri:
            return None
        try:
            parse_s3_uri(self.uri)
        except ValueError as err:
            return f"uri {err}"
        return None
