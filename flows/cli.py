"""The `prefpipe` command: run the pipeline, one stage, the Prefect UI, a schedule, params, report,
rounds (list, rollback, reproduce), and published versions to and from S3 (push, pull).

Every `PrefpipeError` (bad params, data, store, labeler...) or missing file ends the command with
one line on stderr and exit code 2; `prefpipe --debug ...` shows its traceback too. Prefect is
imported only inside the commands that need it, after `main` has set the environment it reads."""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from dataclasses import fields, is_dataclass
from typing import NoReturn

from flows.artifacts_cli import add_artifacts_commands
from flows.children import run_child, serve_until_stopped
from flows.env import ROOT, UI_STATE, prepare_environment, server_healthy, start_prefect_server
from flows.label_cli import add_label_commands
from flows.report_cli import add_report_command
from flows.rounds_cli import add_rounds_commands
from flows.temporary_server import TemporaryServer
from prefpipe.errors import ConfigError, PrefpipeError


def cmd_run(args) -> int:
    """Plan, run the flow, print the summary; or end with the failed stage's own message, where the
    full log is, and the stage's exit code (2: the user can fix it; 1: anything else). With no
    Prefect API configured, a temporary server boots while the run imports Prefect and plans."""
    from flows.plan import plan

    plan(args.stage or None)  # bad params or stage names: one line, before Prefect starts
    api_url = os.environ.get("PREFECT_API_URL")
    if api_url and not server_healthy(api_url, timeout=10):
        print(f"error: PREFECT_API_URL {api_url}: no Prefect server answers there; start one "
              "(`prefpipe ui`) or unset PREFECT_API_URL to run on a temporary server", file=sys.stderr)
        return 2
    server = None if api_url else TemporaryServer()
    try:
        if server:
            server.start()  # before Prefect is imported: it reads PREFECT_API_URL then
        return run_flow(args, server)
    finally:
        if server:
            server.stop()


def run_flow(args, server: TemporaryServer | None) -> int:
    """cmd_run's flow run, once the run's Prefect server (`server`, or the one configured) answers."""
    from flows.pipeline import StageFailed, pipeline  # imports Prefect: after prepare_environment()
    from flows.run_output import Interrupted, run_log, stop_on_signals, ui_url
    from prefpipe.evaluate.headline import summary_lines

    with stop_on_signals(), run_log() as log_file:
        try:
            if server:
                server.ready()
            state = pipeline(only=args.stage or None, force=args.force, return_state=True)
        except Interrupted as stop:
            print(f"error: stopped by {stop.signal_name}; the running stage was stopped "
                  f"(full log: {log_file})", file=sys.stderr)
            return stop.code
    if not state.is_completed():
        err = state.result(raise_on_failure=False)
        url = None if server else ui_url(state.state_details.flow_run_id)  # a temporary one's UI is gone
        where = [str(log_file)] + [u for u in [url] if u]
        if isinstance(err, PrefpipeError) and not isinstance(err, StageFailed):
            err = StageFailed(str(err), 2)  # e.g. a hook's: the user can fix it
        elif not isinstance(err, StageFailed):
            err = StageFailed(f"the flow failed: {err!r}" if isinstance(err, BaseException) else
                              f"the flow ended {state.type.value}: {state.message}")
        print(f"error: {err}\nfull log: {' and '.join(where)}", file=sys.stderr)
        return err.exit_code
    lines = summary_lines(state.result())
    if not lines:  # a stage ended the run early (e.g. nothing new: its message says so), or --stage
        print(state.message or "done: the stages run write none of the summary's metrics")
        return 0
    print("\n=== prefpipe summary ===")
    for line in lines:
        print(line)
    print(f"report               : {ROOT / 'reports' / 'evaluation.md'}")
    return 0


def cmd_stage(args) -> int:
    """`dvc repro` of one stage; exits with the stage's own code (2: the user can fix it), as
    `prefpipe run` does, not dvc's 255. Holds the workspace as a run does (flows/workspace.py), so
    it never runs into a flow run's stages."""
    from flows.dag import load_stages
    from flows.dvc_state import repro
    from flows.run_output import Interrupted, stop_on_signals
    from flows.workspace import hold_workspace
    from prefpipe.config import load_params

    stages = {s.name: s for s in load_stages(ROOT / "dvc.yaml")}
    if args.name not in stages:
        raise ConfigError(f"unknown stage {args.name!r}; dvc.yaml has {list(stages)}")
    wait_s = load_params(ROOT / "params.yaml").orchestration.wait_for_workspace_s
    with hold_workspace(ROOT, wait_s), stop_on_signals():
        try:
            result = repro(args.name, force=args.force or stages[args.name].always_run)
        except Interrupted as stop:
            print(f"error: stopped by {stop.signal_name}", file=sys.stderr)
            return stop.code
    return result.exit_code


def cmd_ui(args) -> int:
    """`prefect server start` in a process group of its own; SIGTERM or SIGINT stops all of it and
    exits 0 (flows/children.py)."""
    api_url = f"http://127.0.0.1:{args.port}/api"
    env = {**os.environ, "PREFECT_UI_API_URL": api_url, "PREFECT_API_URL": api_url,
           "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(args.port)}
    UI_STATE.parent.mkdir(parents=True, exist_ok=True)
    UI_STATE.write_text(json.dumps({"api_url": api_url}))
    print(f"Prefect UI on http://127.0.0.1:{args.port}; `prefpipe run` in another shell reports "
          "to it. Ctrl-C stops it.", flush=True)
    try:
        return serve_until_stopped("prefpipe ui", lambda: run_child(
            ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(args.port)], env))
    finally:
        if not server_healthy(api_url):
            UI_STATE.unlink(missing_ok=True)


def cmd_serve(args) -> int:
    """`flow.serve` in this process. With no Prefect API configured (no PREFECT_API_URL, no
    `prefpipe ui` up) it first starts a Prefect server of its own (output in .prefect/server.log) and
    records it in .prefect/ui.json for `prefpipe run` and `prefpipe rounds` in other shells: Prefect's
    temporary server would never fire the schedule. SIGTERM or SIGINT stops both and exits 0
    (flows/children.py). One run of the deployment at a time: a run due while another runs waits in
    Prefect's queue (as infra/prefect.yaml's)."""
    started = []  # the API URL of the server this serve started, if it started one

    def serve() -> None:
        if "PREFECT_API_URL" not in os.environ:
            started.append(start_prefect_server(ROOT / ".prefect" / "server.log"))
            os.environ["PREFECT_API_URL"] = os.environ["PREFECT_UI_API_URL"] = started[0]
            UI_STATE.write_text(json.dumps({"api_url": started[0]}))
            print(f"Prefect server and UI on {started[0].removesuffix('/api')} (started for this serve); "
                  "Ctrl-C stops both", flush=True)
        # Prefect reads PREFECT_API_URL when it is imported
        from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

        from flows.pipeline import pipeline

        one_at_a_time = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
        pipeline.serve(name=args.name, cron=args.cron, global_limit=one_at_a_time)

    try:
        return serve_until_stopped("prefpipe serve", serve)
    finally:  # its server is stopped by now; ui.json is left alone if a `prefpipe ui` has taken it over
        if started and UI_STATE.exists() and json.loads(UI_STATE.read_text()).get("api_url") == started[0]:
            UI_STATE.unlink()


def cmd_params(args) -> int:
    from prefpipe.config import load_params
    from prefpipe.data.preflight import check_against_data

    params = load_params(ROOT / args.file)
    check_against_data(params, ROOT / args.file)
    for key, value, help_text in _walk(params, ""):
        print(f"{key:42} {value!r:28} {help_text}")
    return 0


def _walk(obj, prefix):
    for f in fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if is_dataclass(value):
            yield from _walk(value, key + ".")
        else:
            yield key, value, f.metadata.get("help", "")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (exit code 2, as argparse's own)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="prefpipe", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the whole DAG as a Prefect flow")
    run.add_argument("--stage", action="append", help="only this stage (repeatable)")
    run.add_argument("--force", action="store_true", help="rerun stages even if up to date")
    run.set_defaults(func=cmd_run)
    stage = sub.add_parser("stage", help="run one stage through dvc (no Prefect)")
    stage.add_argument("name")
    stage.add_argument("--force", action="store_true")
    stage.set_defaults(func=cmd_stage)
    ui = sub.add_parser("ui", help="start the Prefect server and UI on 127.0.0.1")
    ui.add_argument("--port", type=int, default=4200)
    ui.set_defaults(func=cmd_ui)
    serve = sub.add_parser("serve", help="serve a cron-scheduled deployment of the flow")
    serve.add_argument("--cron", required=True, help="cron expression, e.g. '0 3 * * *'")
    serve.add_argument("--name", default="prefpipe-scheduled")
    serve.set_defaults(func=cmd_serve)
    params = sub.add_parser("params", help="validate params.yaml and print every knob")
    params.add_argument("--file", default="params.yaml")
    params.set_defaults(func=cmd_params)
    add_label_commands(sub)
    add_report_command(sub)
    add_rounds_commands(sub)
    add_artifacts_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.chdir(ROOT)
    prepare_environment()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (PrefpipeError, FileNotFoundError) as err:  # a file the user named is missing: theirs to fix
        if args.debug:
            traceback.print_exc()
        message = f"{err.filename}: no such file or folder" if isinstance(err, FileNotFoundError) else err
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
