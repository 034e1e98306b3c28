"""The Prefect flow, built from dvc.yaml: one task per stage, each run through `dvc repro`.

Running stages through DVC keeps dvc.lock current, so after a Prefect run `dvc repro` has nothing
to do, and a failed run's next attempt starts at the stage that failed (the ones before it are
up to date and skipped). What the flow does around a stage (e.g. wait for annotators) is declared
on the stage in dvc.yaml (`meta: {after: HOOK}`, flows/hooks.py); the flow knows no stage by name.

Importing this module imports Prefect, which reads PREFECT_HOME then: entry points set the
environment first (flows.env.prepare_environment). Run: prefpipe run"""
from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from flows.dag import Stage, load_stages
from flows.dvc_state import up_to_date
from flows.env import ROOT, command_environment
from flows.hooks import AFTER_HOOKS, check_hooks
from prefpipe.config import Params, load_params
from prefpipe.errors import ConfigError, PrefpipeError
from prefpipe.evaluate.headline import artifact_keys


class StageFailed(PrefpipeError, RuntimeError):
    """A stage's command exited non-zero; the message carries its last log lines."""


@task(task_run_name="{stage}")
def run_stage(stage: str, force: bool = False) -> str:
    """`dvc repro --single-item STAGE`, streaming its output into the Prefect log. Returns "ran" or
    "skipped", as `dvc status` said before the run."""
    logger = get_run_logger()
    skipping = not force and up_to_date(stage)
    command = ["dvc", "repro", "--single-item", stage] + (["--force"] if force else [])
    env = command_environment(PREFPIPE_RUN_ID=str(flow_run.get_id() or "local"))
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
    return "skipped" if skipping else "ran"


def collect_metrics(root: Path = ROOT) -> dict[str, dict]:
    metrics = {}
    for path in sorted((root / "metrics").glob("*.json")):
        metrics[path.stem] = json.loads(path.read_text())
    return metrics


def summary_rows(metrics: dict[str, dict]) -> list[dict]:
    """The summary artifact's rows: the headline metrics (prefpipe.evaluate.headline) found."""
    rows = []
    for stage, values in metrics.items():
        for key in artifact_keys():
            if key in values:
                rows.append({"stage": stage, "metric": key, "value": round(values[key], 4)})
    return rows


def plan(only: list[str] | None = None) -> tuple[Params, list[Stage]]:
    """The validated params and the stages to run, in order (all, or just `only`). Raises a
    ConfigError naming the params key or the stage; the CLI calls it too, to fail before Prefect."""
    params = load_params(ROOT / "params.yaml")
    stages = load_stages(ROOT / "dvc.yaml")
    check_hooks(stages, ROOT / "dvc.yaml")
    unknown = set(only or ()) - {s.name for s in stages}
    if unknown:
        raise ConfigError(f"unknown stage(s) {sorted(unknown)}; dvc.yaml has "
                          f"{[s.name for s in stages]}")
    return params, [s for s in stages if not only or s.name in only]


@flow(name="prefpipe", log_prints=True)
def pipeline(only: list[str] | None = None, force: bool = False) -> dict[str, dict]:
    """Run every stage of dvc.yaml in dependency order (or just `only`); returns the metrics."""
    params, stages = plan(only)  # bad params fail here, before any stage runs
    retrying = run_stage.with_options(retries=params.orchestration.retries,
                                      retry_delay_seconds=params.orchestration.retry_delay_seconds)
    outcomes = {}
    for stage in stages:
        outcomes[stage.name] = retrying(stage.name, force=force)
        if stage.after is not None:
            hook = AFTER_HOOKS[stage.after]
            rerun = partial(retrying, stage.name, force=True)
            outcomes[stage.name] = hook(stage, params, rerun, ROOT) or outcomes[stage.name]
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
