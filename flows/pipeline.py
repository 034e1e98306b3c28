"""The Prefect flow, built from dvc.yaml: one task per stage, each run through `dvc repro`.

Running stages through DVC keeps dvc.lock current, so after a Prefect run `dvc repro` has nothing
to do, and a failed run's next attempt starts at the stage that failed (the ones before it are
up to date and skipped). What the flow does around a stage (e.g. wait for annotators) is declared
on the stage in dvc.yaml (`meta: {after: HOOK}`, flows/hooks.py); the flow knows no stage by name.
Every run, failed ones too, leaves Prefect artifacts: the headline metrics, the evaluation report and
the verdicts of any metrics file that has them (metrics/gates.json), from the stages it ran.

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
from prefpipe.evaluate.gates import verdicts_markdown
from prefpipe.evaluate.headline import artifact_keys

REPORT = "reports/evaluation.md"  # the evaluation report, shown as an artifact when there is one


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


def collect_metrics(root: Path = ROOT, only: set[str] | None = None) -> dict[str, dict]:
    """metrics/*.json by stem: all of them, or those whose path (e.g. "metrics/gates.json") is in `only`."""
    metrics = {}
    for path in sorted((root / "metrics").glob("*.json")):
        if only is None or path.relative_to(root).as_posix() in only:
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


def publish(metrics: dict[str, dict], report: Path | None) -> None:
    """The run's Prefect artifacts: the headline metrics' table, the evaluation report, and a markdown
    table of every metrics file that holds a `verdicts` mapping (a stage's pass/fail checks, e.g.
    metrics/gates.json), so the UI shows why a run failed."""
    rows = summary_rows(metrics)
    if rows:
        create_table_artifact(key="prefpipe-summary", table=rows,
                              description="Key metrics of this run (metrics/*.json)")
    if report is not None and report.exists():
        create_markdown_artifact(key="prefpipe-report", markdown=report.read_text(),
                                 description="Evaluation report")
    for stem, values in metrics.items():
        if isinstance(values.get("verdicts"), dict):
            create_markdown_artifact(key="prefpipe-" + stem.lower().replace("_", "-"),
                                     markdown=verdicts_markdown(values, title=stem),
                                     description=f"Verdicts of metrics/{stem}.json")


def publish_after_failure(done: list[Stage]) -> None:
    """A failed run's artifacts, from the outputs of the stages this run finished or was running when
    it failed (a stage may write its verdicts before failing on them); stale files of stages it
    never reached stay out. An artifact that cannot be created must not hide the stage's error."""
    outs = {out for stage in done for out in stage.outs}
    try:
        publish(collect_metrics(ROOT, outs), ROOT / REPORT if REPORT in outs else None)
    except Exception as err:  # the stage's failure is the one to report
        get_run_logger().warning("could not create the failed run's artifacts: %r", err)


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
    done: list[Stage] = []  # finished, or running when the run failed
    try:
        for stage in stages:
            done.append(stage)
            outcomes[stage.name] = retrying(stage.name, force=force)
            if stage.after is not None:
                hook = AFTER_HOOKS[stage.after]
                rerun = partial(retrying, stage.name, force=True)
                outcomes[stage.name] = hook(stage, params, rerun, ROOT) or outcomes[stage.name]
    except Exception:  # a failed stage (StageFailed) or hook; a signal (BaseException) just stops
        publish_after_failure(done)
        raise
    metrics = collect_metrics()
    publish(metrics, ROOT / REPORT)
    get_run_logger().info("stages: %s", outcomes)
    return metrics
