"""`prefpipe push VERSION` and `prefpipe pull VERSION`: a published version's folder to and from
the S3 artifact store, `s3://BUCKET/PREFIX/<version>/` (prefpipe/artifacts/s3.py).

    prefpipe push r2-1a2b3c4d              # its folder in the store's versions/ -> artifacts.uri
    prefpipe pull r2-1a2b3c4d [--dest DIR]  # -> DIR/r2-1a2b3c4d (default DIR: the store's versions/)

`push` uploads a version published before `artifacts.uri` was set (publish uploads by itself once
it is) and records the copy in the registry; only what the bucket lacks is sent. `pull` restores
from where the registry says the version was uploaded, or, for a version this store does not know
(a fresh machine), from `artifacts.uri`; every file is checked against the version's manifest and
the folder appears complete or not at all. Credentials and the endpoint come from the AWS
environment (AWS_ACCESS_KEY_ID / AWS_PROFILE, AWS_ENDPOINT_URL), never from params.yaml."""
from __future__ import annotations

import argparse
from pathlib import Path

from flows.env import ROOT
from prefpipe.errors import PrefpipeError


def _context():
    from prefpipe.config import load_params
    from prefpipe.store import Store

    params = load_params(ROOT / "params.yaml")
    return Store(ROOT / params.store.path, params.store.lock_timeout_s), params


def _artifact_store(uri: str, params):
    from prefpipe.artifacts.s3 import S3ArtifactStore

    return S3ArtifactStore(uri, params.artifacts.multipart_threshold_mb, params.artifacts.multipart_chunk_mb)


def _versions_dir(params) -> Path:
    from tasks.paths import versions_dir

    return ROOT / versions_dir(params.store.path)


def cmd_push(args) -> int:
    from prefpipe.artifacts.local import folder_files

    store, params = _context()
    row = store.registry.version(args.version)
    if row is None:
        known = ", ".join(v["version"] for v in store.registry.versions()) or "none (nothing published yet)"
        raise PrefpipeError(f"unknown model version {args.version!r}; known versions: {known}")
    if not params.artifacts.uri:
        raise PrefpipeError("artifacts.uri is empty in params.yaml: set it to s3://BUCKET/PREFIX to push")
    folder = ROOT / (row["artifact_uri"] or _versions_dir(params) / args.version)
    sent = _artifact_store(params.artifacts.uri, params).upload_version(args.version, folder_files(folder))
    store.registry.set_remote_uri(args.version, sent.uri)
    print(f"pushed {args.version} to {sent.uri}: {sent.uploaded} files sent "
          f"({sent.bytes_sent / 2**20:.1f} MB), {sent.skipped} already there")
    return 0


def cmd_pull(args) -> int:
    store, params = _context()
    row = store.registry.version(args.version)
    recorded = (row or {}).get("remote_uri")
    if recorded:
        base = recorded.removesuffix("/").removesuffix(args.version)
    elif params.artifacts.uri:
        base = params.artifacts.uri
    else:
        raise PrefpipeError(f"{args.version}: the registry records no copy of it in an artifact store and "
                            "artifacts.uri is empty in params.yaml; set it to the s3://BUCKET/PREFIX "
                            "the version was pushed to")
    target = (Path(args.dest).resolve() if args.dest else _versions_dir(params)) / args.version
    if target.exists():
        print(f"{args.version} is already at {target}; nothing pulled (remove it to pull again)")
        return 0
    artifacts = _artifact_store(base, params)
    manifest = artifacts.download_version(args.version, target)
    size = sum(int(entry["size"]) for entry in manifest["files"].values())
    note = "" if row else "; this store's registry does not know it"
    print(f"pulled {args.version} from {artifacts.version_uri(args.version)} to {target}: "
          f"{len(manifest['files'])} files ({size / 2**20:.1f} MB), checksums verified{note}")
    return 0


def add_artifacts_commands(sub: argparse._SubParsersAction) -> None:
    """Register `prefpipe push` and `prefpipe pull` on the CLI's subparsers."""
    push = sub.add_parser("push", help="upload a published VERSION to the artifact store (artifacts.uri)",
                          description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    push.add_argument("version")
    push.set_defaults(func=cmd_push)
    pull = sub.add_parser("pull", help="restore VERSION from the artifact store, checksums verified",
                          description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pull.add_argument("version")
    pull.add_argument("--dest", metavar="DIR", default=None,
                      help="restore into DIR/VERSION (default: the store's versions folder)")
    pull.set_defaults(func=cmd_pull)
