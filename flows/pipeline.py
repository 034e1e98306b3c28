"""The Prefect flow, built from dvc.yaml: one task per stage, each run through `dvc repro`.

Running stages through DVC keeps dvc.lock current, so after a Prefect run `dvc repro` has nothing
to do, and a failed run's next attempt starts at the stage that failed (the ones before it are
up to date and skipped). Run: prefpipe run   (or python -m flows.pipeline)"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from flows.env import ROOT, prepare_environment

prepare_environment()

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402

from flows.dag import load_stages  # noqa: E402
from flows.human_wait import wait_for_human_labels  # noqa: E402
from prefpipe.config import load_params  # noqa: E402
from prefpipe.label.human_queue import pending_tasks  # noqa: E402
from prefpipe.store import Store  # noqa: E402

SUMMARY_KEYS = ("win_rate", "win_rate_low", "win_rate_high", "kl_nats", "policy_well_formed",
                "reference_well_formed", "policy_rm_score", "reference_rm_score",
                "policy_mean_tokens", "reference_mean_tokens", "val_gold_accuracy",
                "val_label_accuracy", "gold_agreement")


class StageFailed(RuntimeError):
    """A stage's command exited non-zero; the message carries its last log lines."""


@task(task_run_name="{stage}")
def run_stage(stage: str, force: bool = False) -> str:
    """`dvc repro --single-item STAGE`, streaming its output into the Prefect log."""
    logger = get_run_logger()
    command = ["dvc", "repro", "--single-item", stage] + (["--force"] if force else [])
    env = {**os.environ, "PREFPIPE_RUN_ID": str(flow_run.get_id() or "local")}
    tail: list[str] = []
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, bufsize=1) as process:
        for line in process.stdout:
            line = line.rstrip()
            if line:
                logger.info(line)
                tail = (tail + [line])[-20:]
        code = process.wait()
    if code != 0:
        raise StageFailed(f"stage {stage} failed (exit {code}):\n" + "\n".join(tail))
    return "skipped" if any("didn't change, skipping" in t for t in tail) else "ran"


def collect_metrics(root: Path = ROOT) -> dict[str, dict]:
    metrics = {}
    for path in sorted((root / "metrics").glob("*.json")):
        metrics[path.stem] = json.loads(path.read_text())
    return metrics


def summary_rows(metrics: dict[str, dict]) -> list[dict]:
    rows = []
    for stage, values in metrics.items():
        for key in SUMMARY_KEYS:
            if key in values:
                rows.append({"stage": stage, "metric": key, "value": round(values[key], 4)})
    return rows


@flow(name="prefpipe", log_prints=True)
def pipeline(only: list[str] | None = None, force: bool = False) -> dict[str, dict]:
    """Run every stage of dvc.yaml in dependency order (or just `only`); returns the metrics."""
    params = load_params(ROOT / "params.yaml")  # bad params fail here, before any stage runs
    stages = load_stages(ROOT / "dvc.yaml")
    unknown = set(only or ()) - {s.name for s in stages}
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; dvc.yaml has "
                         f"{[s.name for s in stages]}")
    retrying = run_stage.with_options(retries=params.orchestration.retries,
                                      retry_delay_seconds=params.orchestration.retry_delay_seconds)
    outcomes = {}
    for stage in stages:
        if only and stage.name not in only:
            continue
        outcomes[stage.name] = retrying(stage.name, force=force)
        if stage.name == "label" and params.label.human.wait_s > 0:
            store = Store(ROOT / params.store.path, params.store.lock_timeout_s)
            if pending_tasks(store):
                wait_for_human_labels(store, params.label.human.wait_s)
                outcomes["label"] = retrying("label", force=True)  # collect what annotators submitted
    metrics = collect_metrics()
    rows = summary_rows(metrics)
    if rows:
        create_table_artifact(key="prefpipe-summary", table=rows,
                              description="Key metrics of this run (metrics/*.json)")
    report = ROOT / "reports" / "evaluation.md"
    if report.exists():
        create_markdown_artifact(key="prefpipe-report", markdown=report.read_text(),
                                 description="Evaluation report")
    get_run_logger().info("stages: %s", outcomes)
    return metrics


if __name__ == "__main__":
    pipeline()
