"""Where published model versions live besides the local store.

- local.py: a version's folder on disk (both models, the round's reports and metrics), written
  whole or not at all, and the files it holds.
- s3.py: the S3 artifact store, `s3://BUCKET/PREFIX/<version>/`, with a manifest written last, sha256
  checks both ways and idempotent re-uploads (boto3; credentials from the AWS environment only);
  s3_errors.py turns what boto3 raises into one line (`ArtifactStoreError`).

Import the module you need: this package's import loads neither boto3 nor anything else."""
