"""Stage publish: a round whose gates passed becomes a model version in the store's registry.

The policy (and the reward model it was judged with), the round's reports and metrics are copied
to `store/versions/<version>/` and, when `artifacts.uri` is set, uploaded to
`s3://BUCKET/PREFIX/<version>/` (prefpipe/artifacts; credentials from the AWS environment), and the
registry records the version with its lineage: round, parent version (the generator), the
params, git revision and dvc.lock it was made with, the hash of the round's inputs, label counts by
source, metrics, gate verdicts, the local folder and the S3 copy. `current` moves to it, so the
next round samples from it. Gates that failed (with evaluate.enforce_gates false, the gate stage
lets the run go on) publish nothing. Writes reports/round.md (the round's summary, a Prefect
artifact) and metrics/publish.json.

Run: python -m tasks.publish"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from collections import Counter
from pathlib import Path

from prefpipe.artifacts.local import folder_files, stage_folder
from prefpipe.config.artifacts import ArtifactsParams
from prefpipe.models.version import model_version
from prefpipe.rounds.report import round_markdown
from prefpipe.store import Store, read_parquet, rows
from tasks import paths
from tasks._stage import run_stage, write_json
from tasks.round_info import read_round_info

log = logging.getLogger("prefpipe")


def publish(params, store: Store) -> dict:
    info = read_round_info()
    number = int(info["round"])
    gates = _json(paths.METRICS / "gates.json")
    evaluation = _json(paths.METRICS / "evaluate.json")
    reward = _json(paths.METRICS / "reward.json")
    preferences = rows(read_parquet(paths.PREFERENCES))
    labels = dict(sorted(Counter(p["source"] for p in preferences if p.get("round") == number).items()))
    summary = {"round": number, "generator_version": info["generator_version"],
               "reason": info["reason"], "labels": labels, "preferences": len(preferences),
               "metrics": evaluation, "reward_model": reward, "gates": gates}
    if not gates.get("passed"):
        message = f"round {number}: gates failed; nothing published, current stays"
        store.registry.finish_round(number, "rejected", message=message)
        log.warning("%s", message)
        paths.ROUND_REPORT.parent.mkdir(parents=True, exist_ok=True)
        paths.ROUND_REPORT.write_text(round_markdown({**summary, "version": None}))
        write_json(paths.METRICS / "publish.json", {"round": number, "published": False})
        return {"round": number, "published": False}
    model_hash = model_version(paths.POLICY_MODEL)
    version = f"r{number}-{model_hash[:8]}"
    target = paths.versions_dir(params.store.path) / version
    paths.ROUND_REPORT.parent.mkdir(parents=True, exist_ok=True)
    paths.ROUND_REPORT.write_text(round_markdown({**summary, "version": version}))
    stage_folder(target, _version_sources())
    remote = _upload(params.artifacts, version, target)
    store.registry.publish({
        "version": version, "round": number, "parent_version": info["generator_version"],
        "model_hash": model_hash, "params_sha256": _sha256(_params_file().read_bytes()),
        "git_revision": _git_revision(), "dvc_lock_sha256": _sha256(_read(Path("dvc.lock")).encode()),
        "snapshot_sha256": _snapshot_hash(), "label_counts": labels,
        "metrics": {**reward, **evaluation}, "gates": gates,
        "artifact_uri": target.as_posix(), "params_yaml": _params_file().read_text(),
        "dvc_lock": _read(Path("dvc.lock")), "remote_uri": remote})
    if remote and store.registry.version(version)["remote_uri"] != remote:  # registered by an earlier run
        store.registry.set_remote_uri(version, remote)
    log.info("published %s (round %d, from %s) -> %s%s; current is %s", version, number,
             info["generator_version"], target, f" and {remote}" if remote else "", version)
    metrics = {"round": number, "published": True, "version": version}
    write_json(paths.METRICS / "publish.json", metrics)
    return metrics


def _version_sources() -> dict[str, Path]:
    """What a version's folder holds, by the path it has there: both models, the round's report,
    the evaluation reports and the metrics the stages wrote (publish.json comes after)."""
    sources = {"policy": paths.POLICY_MODEL, "reward": paths.REWARD_MODEL}
    for path in (paths.ROUND_REPORT, paths.REPORT, paths.HTML_REPORT, *sorted(paths.METRICS.glob("*.json"))):
        if path.is_file() and path != paths.METRICS / "publish.json":
            sources[path.as_posix()] = path
    return sources


def _upload(artifacts: ArtifactsParams, version: str, folder: Path) -> str | None:
    """The version's folder to the artifact store when `artifacts.uri` is set: its S3 URI, or None.
    A failure (one line) fails the stage before the registry hears of the version; a rerun sends
    only what is missing."""
    if not artifacts.uri:
        return None
    from prefpipe.artifacts.s3 import S3ArtifactStore  # boto3: 2 s to import, for S3 alone

    store = S3ArtifactStore(artifacts.uri, artifacts.multipart_threshold_mb, artifacts.multipart_chunk_mb)
    sent = store.upload_version(version, folder_files(folder))
    log.info("uploaded %s to %s: %d files sent (%.1f MB), %d already there%s", version, sent.uri,
             sent.uploaded, sent.bytes_sent / 2**20, sent.skipped,
             "" if sent.manifest_written else "; the same manifest was there")
    return sent.uri


def _snapshot_hash() -> str:
    """The hash of what the round started from: its round.json, prompts and earlier pairs."""
    digest = hashlib.sha256()
    for path in (paths.ROUND_INFO, paths.ROUND_PROMPTS, paths.ROUND_HISTORY):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _git_revision() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def _params_file() -> Path:
    return Path(os.environ.get("PREFPIPE_PARAMS", "params.yaml"))


def _json(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; run the stage that writes it first")
    return json.loads(path.read_text())


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


if __name__ == "__main__":
    run_stage("publish", publish, uses_torch=False)
