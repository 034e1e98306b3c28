"""The Prefect flow, built from dvc.yaml: one task per stage, each run through `dvc repro`.

Running stages through DVC keeps dvc.lock current, so after a Prefect run `dvc repro` has nothing
to do, and a failed run's next attempt starts at the stage that failed (the ones before it are
up to date and skipped). One `dvc status` of every stage opens the run: a stage it finds up to date
is skipped without starting dvc (its task run still records it), until a stage it reads from runs.
Stages run one at a time in dependency order, each task run waiting for
(`wait_for`) its upstream stages' task runs, which draws the run graph's edges; a stage that
`orchestration.work_pools` names runs on a worker of that Prefect work pool (flows/dispatch.py),
the others in this process. What the flow does around a stage (e.g. wait for annotators) is
declared on the stage in dvc.yaml (`meta: {after: HOOK}`, flows/hooks.py); what a stage asks of the
run it says itself (tasks/_stage.report_exit): stop it (nothing more to do: it ends Completed with
the stage's message, no later stage runs) or prefix its name (e.g. "round 3 · witty-fox"). The flow
knows no stage by name.
Every run, failed and stopped ones too, leaves Prefect artifacts from the stages it ran: the headline
metrics, each markdown report among their outs (reports/*.md: "prefpipe-<stem>", the evaluation
report "prefpipe-report") and the verdicts of any metrics file that has them (metrics/gates.json).

Importing this module imports Prefect, which reads PREFECT_HOME then: entry points set the
environment first (flows.env.prepare_environment). Run: prefpipe run"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import partial
from pathlib import Path, PurePosixPath

from prefect import Task, flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run
from prefect.states import Completed, State

from flows.dag import Stage
from flows.dispatch import dispatch
from flows.dvc_state import Repro, changed_stages, repro
from flows.env import ROOT
from flows.hooks import AFTER_HOOKS
from flows.plan import plan
from flows.workspace import hold_workspace
from prefpipe.config import Params
from prefpipe.config.schema import OrchestrationParams
from prefpipe.errors import PrefpipeError
from prefpipe.evaluate.gates import verdicts_markdown
from prefpipe.evaluate.headline import artifact_keys

REPORT = "reports/evaluation.md"  # the evaluation report, shown as an artifact when there is one
STOPPED = "prefpipe-round"  # a round is one run: the artifact saying why this one ended early


class StageFailed(PrefpipeError, RuntimeError):
    """A stage's command failed: the stage's own one-line message and the exit code `prefpipe run`
    ends with (2: the user can fix it, as the stage said; 1: anything else)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@task(task_run_name="{stage}")
def run_stage(stage: str, force: bool = False, work_pool: str = "", dispatch_timeout_s: float = 0.0,
              changed: bool | None = None) -> Repro:
    """`dvc repro --single-item STAGE`, streaming its output into the Prefect log; with a `work_pool`,
    run by a worker of that pool instead (flows/dispatch.py). Returns how it ended: its `outcome`
    "ran", "skipped" or "restored" (from DVC's run cache), as DVC's state and the stage itself said,
    and what the stage asked of the run (`stop_message`, `run_title`). `changed`: what the run's
    opening `dvc status` says of the stage while it still holds (None: ask dvc); False skips it here,
    with no dvc (nor worker) started, the task run still recording it."""
    logger = get_run_logger()
    run_id = str(flow_run.get_id() or "local")
    if work_pool and changed is not False:
        result = dispatch(stage, force, work_pool, dispatch_timeout_s, run_id, say=logger.info)
    else:
        result = repro(stage, force, on_line=logger.info, changed=changed, PREFPIPE_RUN_ID=run_id)
    if result.exit_code:
        raise StageFailed(result.message, result.exit_code)
    return result


class StageRunner:
    """Runs stages as Prefect task runs, one at a time: each waits for (`wait_for`) the latest task
    runs of its upstream stages, which gives the run graph its edges; a rerun (a hook's) also waits
    for the run it repeats. A stage `orchestration.work_pools` names is sent to its work pool.
    `changed_at_start`: the stages the run's opening `dvc status` found changed (None: unknown); its
    word on a stage holds until a stage that stage reads from runs. `results`: each stage's latest
    Repro."""

    def __init__(self, run_task: Task, force: bool, orchestration: OrchestrationParams,
                 changed_at_start: set[str] | None = None):
        self.run_task, self.force, self.orchestration = run_task, force, orchestration
        self.changed_at_start = changed_at_start
        self.states: dict[str, State] = {}
        self.results: dict[str, Repro] = {}

    def run(self, stage: Stage, force: bool = False) -> Repro:
        """Run `stage` (forced when it is `meta.always_run`: it reads state DVC can't see); raises
        its StageFailed when it failed (after the task's retries)."""
        upstream = [self.states[name] for name in (*stage.upstream, stage.name) if name in self.states]
        forced = self.force or force or stage.always_run
        state = self.run_task(stage.name, force=forced,
                              work_pool=self.orchestration.work_pools.get(stage.name, ""),
                              dispatch_timeout_s=self.orchestration.dispatch_timeout_s,
                              changed=None if forced else self.known_change(stage),
                              wait_for=upstream, return_state=True)
        self.states[stage.name] = state
        self.results[stage.name] = state.result()
        return self.results[stage.name]

    def known_change(self, stage: Stage) -> bool | None:
        """Whether `stage` changed, as the opening `dvc status` said, while no stage it reads from has
        run (or been restored) in this run since; None: dvc must be asked again."""
        moved = any(name in self.results and self.results[name].outcome != "skipped"
                    for name in stage.upstream)
        if self.changed_at_start is None or moved:
            return None
        return stage.name in self.changed_at_start

    def rerun(self, stage: Stage) -> str:
        """A hook's `rerun()`: the stage again with --force; returns its outcome."""
        return self.run(stage, force=True).outcome


def run_stages(stages: list[Stage], params: Params, runner: StageRunner, done: list[Stage]) -> str:
    """Run `stages` in order, each followed by the hook it declares, appending each to `done` as it
    starts. Returns the message of a stage that stopped the run ("" when none did): no later stage
    runs then. A stage's run_title renames the run as soon as the stage has run."""
    for stage in stages:
        done.append(stage)
        result = runner.run(stage)
        if stage.after is not None and not result.stop_message:
            AFTER_HOOKS[stage.after](stage, params, partial(runner.rerun, stage), ROOT)
            result = runner.results[stage.name]
        if result.run_title:
            name_run(result.run_title)
        if result.stop_message:
            return result.stop_message
    return ""


def name_run(title: str) -> None:
    """Rename this flow run "<title> · <its name>" (e.g. "round 3 · witty-fox"), as a stage asked.
    The name only helps find the run in the UI: a rename that fails just warns."""
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.get_id(), name=f"{title} · {flow_run.get_name()}")
    except Exception as err:
        get_run_logger().warning("could not rename the flow run to %r: %r", title, err)


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


def md_reports(stages: Iterable[Stage]) -> list[str]:
    """The markdown reports among the stages' outs: reports/*.md."""
    return [out for stage in stages for out in stage.outs
            if PurePosixPath(out).parent == PurePosixPath("reports") and out.endswith(".md")]


def report_key(path: str) -> str:
    """A report's artifact key: "prefpipe-report" for the evaluation report, else "prefpipe-<stem>"
    (reports/round.md: "prefpipe-round")."""
    if path == REPORT:
        return "prefpipe-report"
    return "prefpipe-" + re.sub(r"[^a-z0-9]+", "-", PurePosixPath(path).stem.lower()).strip("-")


def publish(metrics: dict[str, dict], reports: Iterable[str]) -> None:
    """The run's Prefect artifacts: the headline metrics' table, each markdown report of `reports`
    (paths under the project) that exists, and a markdown table of every metrics file that holds a
    `verdicts` mapping (a stage's pass/fail checks, e.g. metrics/gates.json), so the UI shows why a
    run failed."""
    rows = summary_rows(metrics)
    if rows:
        create_table_artifact(key="prefpipe-summary", table=rows,
                              description="Key metrics of this run (metrics/*.json)")
    for path in dict.fromkeys(reports):
        if (ROOT / path).is_file():
            create_markdown_artifact(key=report_key(path), markdown=(ROOT / path).read_text(),
                                     description="Evaluation report" if path == REPORT else path)
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
        publish(collect_metrics(ROOT, outs), md_reports(done))
    except Exception as err:  # the stage's failure is the one to report
        get_run_logger().warning("could not create the failed run's artifacts: %r", err)


def end_early(message: str, done: list[Stage]) -> State:
    """A stage said the run has nothing more to do: log its message, publish what the stages run so
    far wrote, plus the message as the STOPPED artifact, and end Completed with the message; the
    run's result is those stages' metrics."""
    get_run_logger().info("%s: no later stage runs", message)
    metrics = collect_metrics(ROOT, {out for stage in done for out in stage.outs})
    publish(metrics, md_reports(done))
    create_markdown_artifact(key=STOPPED, markdown=message, description="Why this run ended early")
    return Completed(message=message, data=metrics)


@flow(name="prefpipe", log_prints=True)
def pipeline(only: list[str] | None = None, force: bool = False) -> dict[str, dict] | State:
    """Run every stage of dvc.yaml in dependency order (or just `only`); returns the metrics. A
    stage that stops the run ends it there, Completed with the stage's message (end_early)."""
    params, stages = plan(only)  # bad params fail here, before any stage runs
    with hold_workspace(ROOT, params.orchestration.wait_for_workspace_s):  # one run at a time
        # one `dvc status` for the run: a stage it finds up to date is skipped without a dvc process
        changed = None if force else changed_stages([s.name for s in stages if not s.always_run])
        runner = StageRunner(run_stage.with_options(
            retries=params.orchestration.retries,
            retry_delay_seconds=params.orchestration.retry_delay_seconds), force, params.orchestration,
            changed)
        done: list[Stage] = []  # finished, or running when the run failed
        try:
            stopped = run_stages(stages, params, runner, done)
        except Exception:  # a failed stage (StageFailed) or hook; a signal (BaseException) just stops
            publish_after_failure(done)
            raise
        get_run_logger().info("stages: %s", {name: r.outcome for name, r in runner.results.items()})
        if stopped:
            return end_early(stopped, done)
        metrics = collect_metrics()
        publish(metrics, [REPORT, *md_reports(done)])
        return metrics
