"""The Prefect flow, built from dvc.yaml: one task per stage, each run through `dvc repro`.

Running stages through DVC keeps dvc.lock current, so after a Prefect run `dvc repro` has nothing
to do, and a failed run's next attempt starts at the stage that failed (the ones before it are
up to date and skipped). What the flow does around a stage (e.g. wait for annotators) is declared
on the stage in dvc.yaml (`meta: {after: HOOK}`, flows/hooks.py); the flow knows no stage by name.

Importing this module imports Prefect, which reads PREFECT_HOME then: entry points set the
environment first (flows.env.prepare_environment). Run: prefpipe run"""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from flows.dag import Stage, load_stages
from flows.dvc_state import repro
from flows.env import ROOT
from flows.hooks import AFTER_HOOKS, check_hooks
from prefpipe.config import Params, load_params
from prefpipe.data.preflight import check_against_data
from prefpipe.errors import ConfigError, PrefpipeError
from prefpipe.evaluate.headline import artifact_keys


class StageFailed(PrefpipeError, RuntimeError):
    """A stage's command failed: the stage's own one-line message and the exit code `prefpipe run`
    ends with (2: the user can fix it, as the stage said; 1: anything else)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@task(task_run_name="{stage}")
def run_stage(stage: str, force: bool = False) -> str:
    """`dvc repro --single-item STAGE`, streaming its output into the Prefect log. Returns "ran",
    "skipped" or "restored" (from DVC's run cache), as DVC's state and the stage itself said."""
    logger = get_run_logger()
    result = repro(stage, force, on_line=logger.info,
                   PREFPIPE_RUN_ID=str(flow_run.get_id() or "local"))
    if result.exit_code:
        raise StageFailed(result.message, result.exit_code)
    return result.outcome


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
    check_against_data(params, ROOT / "params.yaml")
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
