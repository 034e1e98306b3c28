"""What boto3 and botocore raise, as the one line a user reads: where, what went wrong, what to do.

Nothing here repeats a credential: messages name the bucket, the endpoint (without any
user:password@) and the error code, never a key or a signature."""
from __future__ import annotations

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from prefpipe.errors import PrefpipeError

DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
          "ExpiredToken", "AllAccessDisabled", "AccountProblem"}
NO_BUCKET = {"NoSuchBucket", "404"}  # a 404 means no bucket only where the bucket is what was asked for
NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
TRANSLATED = (BotoCoreError, ClientError, S3UploadFailedError)  # what `one_line` takes


class ArtifactStoreError(PrefpipeError, RuntimeError):
    """The artifact store can't do what was asked; one line naming the bucket or URI and what to do."""


def code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def one_line(err: Exception, where: str, bucket: str, endpoint: str) -> ArtifactStoreError:
    """`err` (one of TRANSLATED) as an ArtifactStoreError starting with `where`. botocore has
    retried what was transient (throttling, 5xx, dropped connections) before it raised."""
    if isinstance(err, S3UploadFailedError) and isinstance(err.__context__, ClientError):
        err = err.__context__  # boto3 wraps the ClientError of a failed upload in a message
    if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
        return ArtifactStoreError(f"{where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                                  "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials")
    if isinstance(err, UNREACHABLE):
        return ArtifactStoreError(f"{where}: the S3 endpoint {endpoint} does not answer "
                                  f"({type(err).__name__}, after retries); check AWS_ENDPOINT_URL and "
                                  "the network, then try again")
    if not isinstance(err, ClientError):
        return ArtifactStoreError(f"{where}: {type(err).__name__}: {err}")
    found = code(err)
    if found in DENIED:
        return ArtifactStoreError(f"{where}: access denied ({found}); check the AWS credentials "
                                  f"(AWS_ACCESS_KEY_ID, AWS_PROFILE) and that they may read and write "
                                  f"bucket '{bucket}'")
    if found in NO_BUCKET:
        return ArtifactStoreError(f"{where}: bucket '{bucket}' does not exist at {endpoint}; create it "
                                  "or fix artifacts.uri")
    message = err.response.get("Error", {}).get("Message", "")
    return ArtifactStoreError(f"{where}: S3 error {found}: {message}".rstrip(": "))
