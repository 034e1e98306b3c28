"""End to end: the DAG through a real Prefect server and real `dvc`, on tiny params.

The full run reports to a `prefpipe ui` started in the copy, as a user's second shell would, with
dummy AWS credentials in its environment: Prefect's UI is then checked in a real headless Chromium,
and no file, log or artifact may hold the credentials.

Slow (a few minutes): each stage is a real subprocess started by DVC. Long because one run, the
longest part, is shared by every check on it, the UI's and the secrets' included."""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import duckdb
import httpx
import psutil
import pytest

from tests.annotate.app.test_browser import launch_chromium
from tests.conftest import QUICK, Repo, S3Server, env_for, flow_runs, free_port, make_repo, merge, task_runs

pytestmark = pytest.mark.slow
STAGES = ["prepare", "sft", "round", "generate", "label", "train_reward", "train_policy", "evaluate", "gate",
          "publish"]
LABELLED = STAGES[:5]  # prepare .. label: done before train_reward
SECRETS = (S3Server.access_key, S3Server.secret_key)
WAIT_MS = 30_000  # for the UI to show what it fetched, on a busy machine


def dummy_aws_env() -> dict[str, str]:
    """S3Server.env()'s variables with no S3 server behind them (the pipeline uses none by default):
    the dummy credentials the secrets test looks for, an endpoint nothing listens on."""
    return S3Server.env(SimpleNamespace(access_key=S3Server.access_key, secret_key=S3Server.secret_key,
                                        endpoint_url=f"http://127.0.0.1:{free_port()}"))


@contextmanager
def prefpipe_ui(repo: Repo, timeout_s: float = 120) -> Iterator[str]:
    """`prefpipe ui --port PORT` in the copy (PREFPIPE_ROOT), as a user starts it in another shell, in
    a process group of its own; yields its API URL once it answers. Then SIGTERM: it must exit 0 and
    leave not one of its processes running (those left are killed, and the check fails)."""
    port = free_port()
    assert port != 4200  # not Prefect's default: the UI must be told where its API is
    api_url = f"http://127.0.0.1:{port}/api"
    log = repo.path / "prefpipe-ui.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "flows.cli", "ui", "--port", str(port)],
                                   cwd=repo.path, env={**env_for(repo.path), "PREFPIPE_ROOT": str(repo.path)},
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(api_url):
            assert process.poll() is None and time.monotonic() < deadline, \
                f"prefpipe ui did not answer (exit {process.poll()}): {log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield api_url
    finally:
        left = _stop(process)
    assert process.returncode == 0, f"prefpipe ui exited {process.returncode}: {log.read_text()[-3000:]}"
    assert not left, f"prefpipe ui left processes running: {left}"


def _healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(process: subprocess.Popen) -> list[psutil.Process]:
    """SIGTERM to the process group, as Ctrl-C in its shell; returns the processes it started that
    outlived it (already killed)."""
    try:
        tree = psutil.Process(process.pid).children(recursive=True)
        os.killpg(process.pid, signal.SIGTERM)
    except (psutil.Error, ProcessLookupError):
        tree = []
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    left = psutil.wait_procs(tree, timeout=5)[1]
    for p in left:
        p.kill()
    return left


@pytest.fixture(scope="module")
def ran_repo(tmp_path_factory):
    """One full `prefpipe run`, with dummy AWS credentials in its environment, shared by the tests
    below. It reports to the `prefpipe ui` the copy runs for this module, which it finds as a user's
    run does (.prefect/ui.json; no PREFECT_API_URL): `ui_api` is that server's API."""
    repo = make_repo(tmp_path_factory.mktemp("ran"))
    with prefpipe_ui(repo) as api_url:
        repo.ui_api = api_url
        with pytest.MonkeyPatch.context() as patch:  # what env_for hands the run
            for key, value in dummy_aws_env().items():
                patch.setenv(key, value)
            result = repo.prefpipe("run")
        repo.first_lock = repo.lock_hashes()
        repo.first_output = result.stdout + result.stderr
        yield repo


def test_run_reports_a_summary_and_the_report(ran_repo):
    assert "gold win rate vs SFT" in ran_repo.first_output
    assert "reports/evaluation.md" in ran_repo.first_output
    report = (ran_repo.path / "reports" / "evaluation.md").read_text()
    assert "gold win rate vs reference" in report
    metrics = json.loads((ran_repo.path / "metrics" / "evaluate.json").read_text())
    assert 0.0 <= metrics["win_rate_low"] <= metrics["win_rate"] <= metrics["win_rate_high"] <= 1.0


def test_prefect_holds_one_completed_task_run_per_stage(ran_repo):
    [run] = flow_runs(ran_repo.ui_api)  # the UI's server got the run
    assert run["state_type"] == "COMPLETED"
    tasks = task_runs(ran_repo.ui_api, run["id"])
    stage_runs = sorted(t["name"] for t in tasks)
    assert stage_runs == sorted(STAGES)
    assert {t["state_type"] for t in tasks} == {"COMPLETED"}
    artifacts = httpx.post(f"{ran_repo.ui_api}/artifacts/filter",
                           json={"artifacts": {"key": {"any_": ["prefpipe-summary"]}}}).json()
    mine = [a for a in artifacts if a["flow_run_id"] == run["id"]]
    assert [a["type"] for a in mine] == ["table"]
    assert "win_rate" in json.dumps(mine[0]["data"])


def test_the_prefect_ui_shows_the_run_its_stages_and_artifacts(ran_repo, tmp_path, monkeypatch):
    """Prefect's own UI, from `prefpipe ui` on a port not its default, in headless Chromium: it
    reaches its API (the dashboard counts the run), the runs list leads to the run, whose Task Runs
    tab shows every stage Completed and whose Artifacts tab the summary and the report; the link
    `prefpipe run` prints for a failed run opens it too. A screenshot of the stages is kept."""
    from playwright.sync_api import expect, sync_playwright

    from flows.run_output import ui_url

    [run] = flow_runs(ran_repo.ui_api)
    ui = ran_repo.ui_api.removesuffix("/api")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(WAIT_MS)
            # loopback only: the UI also asks an analytics host for its config
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
                (ui + "/", "data:", "blob:")) else route.abort())
            page = context.new_page()
            page.goto(f"{ui}/")
            # an API it can't reach leaves these empty: not a page that merely loaded
            run_link = page.get_by_role("link", name=f"Open flow run {run['name']}")
            expect(run_link).to_be_attached(timeout=WAIT_MS)
            expect(page.get_by_role("tab", name="completed runs")).to_have_text("1")

            page.get_by_role("link", name="Runs", exact=True).click()
            page.get_by_role("main").get_by_text(run["name"], exact=True).click()
            page.wait_for_url(f"**/runs/flow-run/{run['id']}**")
            # the run's own tabs: the runs list's ("Flow Runs", "Task Runs") linger a moment
            tabs = page.get_by_role("tablist").filter(has=page.get_by_role("tab", name="Artifacts"))
            tabs.get_by_role("tab", name="Task Runs").click()
            stages = page.get_by_role("tabpanel", name="Task Runs")
            expect(stages).to_contain_text(f"{len(STAGES)} Task runs", timeout=WAIT_MS)
            for stage in STAGES:
                row = stages.get_by_role("listitem").filter(
                    has=page.get_by_role("link", name=stage, exact=True)).filter(has_text="Completed")
                expect(row).to_be_visible()
            shot = tmp_path / "prefect-ui-task-runs.png"
            page.screenshot(path=str(shot), full_page=True)

            tabs.get_by_role("tab", name="Artifacts").click()
            artifacts = page.get_by_role("tabpanel", name="Artifacts")
            for key in ("prefpipe-summary", "prefpipe-report"):
                expect(artifacts.get_by_text(key, exact=True)).to_be_visible(timeout=WAIT_MS)

            monkeypatch.setenv("PREFECT_API_URL", ran_repo.ui_api)
            page.goto(ui_url(run["id"]))
            expect(page.get_by_text(run["name"]).first).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_text("Completed").first).to_be_visible()
        finally:
            browser.close()
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24])[0] == 1400
    assert len(png) > 30_000, len(png)  # a blank page compresses to a few kB
    print(f"screenshot of the run's stages in Prefect's UI: {shot}")


def test_no_file_log_or_artifact_holds_the_aws_credentials(ran_repo):
    """The run had the dummy AWS credentials in its environment: no file in the copy (outputs,
    dvc.lock, DVC's cache, the store, Prefect's database and logs, the UI server's log), nor the
    run's terminal output, nor the logs and artifacts Prefect's API serves may hold either."""
    searched, leaks = [], []
    for folder, _, names in os.walk(ran_repo.path):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                data = open(path, "rb").read()
                searched.append(os.path.relpath(path, ran_repo.path))
                leaks += [f"{searched[-1]}: {s[:8]}..." for s in SECRETS if s.encode() in data]
    leaks += [f"run output: {s[:8]}..." for s in SECRETS if s in ran_repo.first_output]
    # it looked where a leak would land
    missed = {"dvc.lock", "prefpipe-ui.log", ".prefect/prefect.db", "store/prefpipe.duckdb"} - set(searched)
    assert not missed, missed
    assert all(any(p.startswith(folder) for p in searched) for folder in (".prefect/logs/", ".dvc/cache/"))

    api = ran_repo.ui_api
    [run] = flow_runs(api)
    logs = run_logs(api, run["id"])
    assert any("Running stage 'publish'" in log["message"] for log in logs)
    artifacts = httpx.post(f"{api}/artifacts/filter",
                           json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    assert {"prefpipe-summary", "prefpipe-report"} <= {a["key"] for a in artifacts}
    served = json.dumps([run, task_runs(api, run["id"]), logs, artifacts])
    leaks += [f"Prefect's API: {s[:8]}..." for s in SECRETS if s in served]
    assert not leaks, leaks


def test_after_a_prefect_run_dvc_has_nothing_to_do(ran_repo):
    status = ran_repo.dvc("status")
    assert "up to date" in status.stdout, status.stdout
    repro = ran_repo.dvc("repro")
    assert "Running stage" not in repro.stdout, repro.stdout
    shown = ran_repo.dvc("metrics", "show").stdout
    assert "win_rate" in shown and "kl_nats" in shown and "val_gold_accuracy" in shown


def test_store_holds_the_runs_data(ran_repo):
    con = duckdb.connect(str(ran_repo.path / "store" / "prefpipe.duckdb"), read_only=True)
    try:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("prompts", "candidates", "pairs", "labels")}
        stages = {r[0] for r in con.execute("SELECT stage FROM runs WHERE status = 'completed'").fetchall()}
        versions = con.execute("SELECT count(DISTINCT model_version) FROM candidates").fetchone()[0]
        labelled = con.execute("SELECT count(DISTINCT pair_id) FROM labels").fetchone()[0]
    finally:
        con.close()
    assert all(n > 0 for n in counts.values()), counts
    assert labelled == counts["pairs"]  # every pair labelled; harmful pairs by 3 annotators each
    assert counts["labels"] > counts["pairs"]
    assert stages == set(STAGES)
    assert versions == 1


def test_changing_a_policy_param_reruns_only_policy_and_evaluate(ran_repo):
    ran_repo.set_params({"policy": {"dpo": {"beta": 0.2}}})
    repro = ran_repo.dvc("repro")
    ran = [s for s in STAGES if f"Running stage '{s}'" in repro.stdout]
    assert ran == ["train_policy", "evaluate", "gate", "publish"], repro.stdout
    assert "up to date" in ran_repo.dvc("status").stdout


def test_failed_stage_is_failed_in_prefect_and_next_run_resumes_there(tmp_path, prefect_server):
    repo = make_repo(tmp_path / "fail", prefect_server, merge(QUICK, {"reward": {"val_fraction": 0.999999}}))
    before = {r["id"] for r in flow_runs(prefect_server)}
    failed = repo.prefpipe("run", check=False)
    assert failed.returncode != 0
    runs = [r for r in flow_runs(prefect_server)  # not the runs a scheduled deployment adds
            if r["id"] not in before and r.get("deployment_id") is None]
    assert [r["state_type"] for r in runs] == ["FAILED"]
    tasks = {t["name"]: t for t in task_runs(prefect_server, runs[0]["id"])}
    assert tasks["train_reward"]["state_type"] == "FAILED"
    assert all(tasks[s]["state_type"] == "COMPLETED" for s in LABELLED)
    assert "train_policy" not in tasks and "evaluate" not in tasks
    assert "no training pairs" in failed.stdout + failed.stderr

    repo.set_params({"reward": {"val_fraction": QUICK["reward"]["val_fraction"]}})
    # up to the stage that failed: the stages after it run as in any run (the main run above)
    resumed = repo.prefpipe("run", *(arg for stage in STAGES[:6] for arg in ("--stage", stage)))
    log = resumed.stdout + resumed.stderr
    for stage in LABELLED:
        if stage == "round":  # runs every time: the round left running resumes, outputs kept
            assert "round 1 was left unfinished: resuming it" in log
        else:
            assert f"Stage '{stage}' didn't change, skipping" in log, stage
    assert "Running stage 'train_reward'" in log
    assert (repo.path / "models" / "reward" / "config.json").is_file()


def test_bad_params_fail_before_any_stage(tmp_path):
    repo = make_repo(tmp_path / "badparams", None, {"sft": {"optim": {"lrr": 1.0}}})
    result = repo.prefpipe("run", check=False)
    assert result.returncode != 0
    assert "sft.optim.lrr" in result.stdout + result.stderr
    assert not (repo.path / "data" / "prompts.parquet").exists()
    assert not (repo.path / "dvc.lock").exists()


def test_bad_input_rows_are_named_and_the_store_keeps_its_data(ran_repo, tmp_path):
    repo = make_repo(tmp_path / "own", None)
    prompts = repo.path / "data" / "inputs" / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Say hi number {i}.", "category": "chat"}) + "\n"
                               for i in range(10)))
    repo.set_params({"model": {"policy": str(ran_repo.path / "models" / "sft")},
                     "data": {"prompts": "data/inputs/prompts.jsonl"},
                     # your own prompts need a model judge (params fail early with the rule judge)
                     "label": {"critic": {"judge": "http", "http": {"model": "judge"}}}})
    repo.prefpipe("stage", "prepare")
    store = repo.path / "store" / "prefpipe.duckdb"

    def stored_prompts() -> int:
        con = duckdb.connect(str(store), read_only=True)
        try:
            return con.execute("SELECT count(*) FROM prompts").fetchone()[0]
        finally:
            con.close()

    assert stored_prompts() == 10
    prompts.write_text(prompts.read_text() + '{"prompt": "fine"}\n{"prompt": 3}\n')
    result = repo.prefpipe("stage", "prepare", check=False)
    assert result.returncode != 0
    assert "data/inputs/prompts.jsonl: line 12" in result.stdout + result.stderr
    assert stored_prompts() == 10


def test_an_external_model_drops_in_and_sft_is_skipped(ran_repo, tmp_path):
    external = ran_repo.path / "models" / "sft"  # any Hugging Face causal-LM folder
    repo = make_repo(tmp_path / "external", None, merge(QUICK, {"model": {"policy": str(external)}}))
    # through generate: the candidates are the external model's (the BYO e2e runs every stage)
    repo.dvc("repro", "generate")
    assert json.loads((repo.path / "metrics" / "sft.json").read_text()) == {"skipped": True}
    assert not (repo.path / "models" / "sft" / "model.safetensors").exists()
    assert json.loads((repo.path / "metrics" / "generate.json").read_text())["pairs"] > 0
    source = json.loads((repo.path / "models" / "sources" / "policy.json").read_text())
    assert source["model"] == str(external), source


def run_logs(api_url: str, flow_run_id: str) -> list[dict]:
    """Every log line Prefect's API holds for the flow run, page by page."""
    logs: list[dict] = []
    while True:
        page = httpx.post(f"{api_url}/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}},
                                                          "limit": 200, "offset": len(logs)}).json()
        logs += page
        if len(page) < 200:
            return logs
