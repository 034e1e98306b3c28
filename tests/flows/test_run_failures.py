"""`prefpipe run` and `prefpipe stage` when a stage fails or is stopped: the stage's own message once,
where the full log is, the stage's own exit code, a prompt and clean stop on SIGTERM. A copy of the
repository whose dvc.yaml has cheap stages (real stage modules through tasks/_stage.run_stage, real
dvc, a real Prefect server), so nothing is trained."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.dvc_state import repro
from tests.conftest import Repo, env_for, flow_runs, make_repo, task_runs

pytestmark = pytest.mark.slow  # real dvc and Prefect: ~2 minutes on a loaded CPU
MESSAGE = "no training pairs: fake"
STAGE_MODULE = '''import time
from prefpipe.errors import StageInputError
from tasks._stage import run_stage


def boom(params, store):
    raise StageInputError("{message}")


def crash(params, store):
    raise RuntimeError("a bug")


def slow(params, store):
    time.sleep(600)


if __name__ == "__main__":
    import sys
    run_stage(sys.argv[1], globals()[sys.argv[1]])
'''
DVC_YAML = """stages:
  first:
    cmd: python -c "open('out1.txt', 'w').write('x')"
    outs: [out1.txt]
""" + "".join(f"""  {name}:
    cmd: python -m tasks.fake {name}
    deps: [out1.txt]
    outs: [{name}.txt]
""" for name in ("boom", "crash", "slow"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory, prefect_server):
    repo = make_repo(tmp_path_factory.mktemp("run-failures"), prefect_server)
    (repo.path / "tasks" / "fake.py").write_text(STAGE_MODULE.replace("{message}", MESSAGE))
    (repo.path / "dvc.yaml").write_text(DVC_YAML)
    return repo


def new_direct_runs(api_url: str, before: set[str]) -> list[dict]:
    """Flow runs started since `before` by `prefpipe run` itself; the shared server also holds the
    runs a scheduled deployment of another test keeps creating."""
    return [r for r in flow_runs(api_url) if r["id"] not in before and r.get("deployment_id") is None]


def test_a_failed_stage_ends_the_run_with_its_own_message_once(repo, prefect_server):
    before = {r["id"] for r in flow_runs(prefect_server)}
    result = repo.prefpipe("run", "--stage", "first", "--stage", "boom", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output  # the stage exited 2 (the user can fix it), not dvc's 255
    assert "Traceback" not in output, output
    assert output.count(MESSAGE) <= 2, output  # the stage's log line as it ran, then the verdict
    error, where = result.stderr.strip().splitlines()[-2:]
    assert error == f"error: boom failed: {MESSAGE}"
    runs = new_direct_runs(prefect_server, before)
    assert [r["state_type"] for r in runs] == ["FAILED"]
    tasks = {t["name"]: t["state_type"] for t in task_runs(prefect_server, runs[0]["id"])}
    assert tasks == {"first": "COMPLETED", "boom": "FAILED"}
    log_file, url = where.removeprefix("full log: ").split(" and ")
    assert url == prefect_server.removesuffix("/api") + f"/runs/flow-run/{runs[0]['id']}"
    assert "Traceback" in Path(log_file).read_text()  # the full log keeps what the terminal doesn't


def test_the_verdict_stays_last_when_prefect_started_a_temporary_server(repo):
    """With no server up, Prefect starts a temporary one and, as the process exits, logs "Stopping
    temporary server on ..." to the terminal: not after the CLI's verdict."""
    alone = Repo(repo.path, api_url=None)
    result = alone.prefpipe("run", "--stage", "first", "--stage", "boom", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Starting temporary server" in output, output  # the case under test
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[-2] == f"error: boom failed: {MESSAGE}", output
    assert lines[-1].startswith("full log: ") and " and " not in lines[-1], output  # no UI: temporary
    assert "Stopping temporary server" not in output, output


@pytest.mark.parametrize(("stage", "code"), [("boom", 2), ("crash", 1)])
def test_prefpipe_stage_exits_with_the_stages_own_code(repo, stage, code):
    result = repo.prefpipe("stage", stage, check=False)
    assert result.returncode == code, result.stdout + result.stderr


def test_sigterm_stops_the_stage_and_the_run_promptly(repo, prefect_server):
    before = {r["id"] for r in flow_runs(prefect_server)}
    log = repo.path / "sigterm.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", "--stage", "first",
                                    "--stage", "slow"], cwd=repo.path, stdout=out, stderr=out,
                                   env=env_for(repo.path, repo.api_url), start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while "stage slow starting" not in log.read_text():
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            code = process.wait(timeout=40)
        finally:
            if process.poll() is None:
                subprocess.run(["kill", "-KILL", f"-{process.pid}"])
    output = log.read_text()
    assert time.monotonic() - stopped < 20, output
    assert code == 128 + signal.SIGTERM, output
    assert "Error logging to API" not in output and "Traceback" not in output, output
    assert output.strip().splitlines()[-1].startswith("error: stopped by SIGTERM"), output
    stage_alive = subprocess.run(["pgrep", "-f", "tasks.fake slow"], capture_output=True, text=True)
    assert not stage_alive.stdout.strip(), stage_alive.stdout
    runs = new_direct_runs(prefect_server, before)
    assert [r["state_type"] for r in runs] in (["CRASHED"], ["FAILED"], ["CANCELLED"])


def test_a_stage_restored_from_the_run_cache_is_not_reported_as_ran(tmp_path, monkeypatch):
    """DVC's run cache checks outputs out without running the command: "restored", not "ran"."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  copy:\n    cmd: python -c \"import shutil; from tasks._stage import report_exit; "
        "shutil.copy('in.txt', 'out.txt'); report_exit(0, 'copy ran')\"\n"
        "    deps: [in.txt]\n    outs: [out.txt]\n")
    outcomes = []
    for text in ("one\n", "two\n", "one\n", "one\n"):
        (tmp_path / "in.txt").write_text(text)
        outcomes.append(repro("copy", root=tmp_path, on_line=lambda line: None).outcome)
    assert outcomes == ["ran", "ran", "restored", "skipped"]
