"""What the rounds end-to-end test drives, as a user would: a served deployment's runs, a run
killed mid-stage, and an annotator answering in the real app's pages (tests/test_rounds_e2e.py)."""
from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from flows.children import descendants
from tests.conftest import env_for

OPPOSITE = {"a": "b", "b": "a"}


def serve(path: Path, api_url: str, name: str) -> subprocess.Popen:
    """`prefpipe serve` of the copy: its deployment runs each flow run as a subprocess."""
    return subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--cron", "0 0 1 1 *", "--name",
                             name], cwd=path, env=cli_env(path, api_url),
                            stdout=open(path / "serve.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def deployment_id(api_url: str, name: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = httpx.get(f"{api_url}/deployments/name/prefpipe/{name}")
        if response.status_code == 200:
            return response.json()["id"]
        time.sleep(1)
    raise AssertionError(f"prefpipe serve registered no deployment {name}")


def run_deployment(api_url: str, deployment: str, timeout_s: float = 900) -> dict:
    """Start a flow run of the deployment (as its schedule would) and wait for its end. The shared
    server answers 503 while its database is busy; like Prefect's own client, retry then."""
    deadline = time.monotonic() + timeout_s
    created = _answered(lambda: httpx.post(f"{api_url}/deployments/{deployment}/create_flow_run", json={}),
                        deadline)
    run_id = created["id"]
    while time.monotonic() < deadline:
        run = _answered(lambda: httpx.get(f"{api_url}/flow_runs/{run_id}"), deadline)
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(2)
    raise AssertionError(f"flow run {run_id} did not finish in {timeout_s}s")


def _answered(call, deadline: float) -> dict:
    """`call()`'s JSON, retried every 2 s while the server answers 5xx, until `deadline`."""
    while True:
        response = call()
        if response.status_code < 500 or time.monotonic() > deadline:
            response.raise_for_status()
            return response.json()
        time.sleep(2)


def cli_env(path: Path, api_url: str) -> dict[str, str]:
    return {**env_for(path, api_url), "PREFPIPE_ROOT": str(path)}


def cli(path: Path, api_url: str, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=path, env=cli_env(path, api_url),
                          capture_output=True, text=True, timeout=timeout)


def commit(path: Path) -> None:
    """publish records HEAD and reproduce checks it out: the copy's sources are committed."""
    for command in (["git", "add", "-A"],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "copy"]):
        subprocess.run(command, cwd=path, check=True, capture_output=True)


def kill_tree(pid: int) -> None:
    """SIGSTOP the process and every descendant until no new one appears (nothing runs on or
    spawns meanwhile), then SIGKILL them all."""
    def send(each: int, sig: int) -> None:
        try:
            os.kill(each, sig)
        except ProcessLookupError:  # ended meanwhile
            pass

    frozen: set[int] = set()
    while todo := ({pid} | set(descendants(pid))) - frozen:
        for each in todo:
            send(each, signal.SIGSTOP)
        frozen |= todo
    for each in frozen:
        send(each, signal.SIGKILL)


def run_until(path: Path, api_url: str, pattern: str, timeout_s: float = 900) -> Path:
    """Start `prefpipe run`, kill its tree once a file matching `pattern` (e.g. a training stage's
    checkpoint) appears; that file's path."""
    log = path / "killed-run.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "flows.cli", "run"], cwd=path,
                                   env=cli_env(path, api_url), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while not (found := list(path.glob(pattern))):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                kill_tree(process.pid)
            raise AssertionError(f"no {pattern} appeared:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    kill_tree(process.pid)
    process.wait(timeout=60)
    return found[0]


def pick(page: str, pattern: str) -> str:
    found = re.search(pattern, page, re.DOTALL)
    assert found, f"no {pattern!r} in the labeling page:\n{page[:2000]}"
    return html.unescape(found.group(1))


def against_the_critic(shown: dict, round_pairs: list[dict]) -> tuple[str, str | None, str]:
    """(shown choice, pair id, the pair's choice it means) for the task on screen: the side the
    critic rejected, where its pair is known and its two responses differ; else 'tie'."""
    matches = [p for p in round_pairs if p["prompt"] == shown["prompt"]
               and {p["response_a"], p["response_b"]} == {shown["first"], shown["second"]}]
    if len(matches) != 1 or shown["first"] == shown["second"]:
        return "tie", None, "tie"
    pair = matches[0]
    wanted = OPPOSITE.get(pair["choice"], "a")  # the critic's loser, or a where it picked no side
    shown_choice = "first" if shown["first"] == pair[f"response_{wanted}"] else "second"
    return shown_choice, pair["pair_id"], wanted


def answer_in_the_browser(url: str, token: str, round_pairs: list[dict], limit: int) -> dict[str, str]:
    """Sign in with the token, then answer `limit` tasks through the labeling page's form, as a
    browser posts it (session cookie, Origin, the form's CSRF field). Returns pair id -> the choice
    (a/b) alice meant, for the tasks whose pair was recognised."""
    with httpx.Client(base_url=url, headers={"Origin": url}, timeout=60) as browser:
        login = browser.post("/login", data={"token": token})
        assert login.status_code == 303 and login.headers["location"] == "/label", login.text
        session = re.search(r"prefpipe_session=([^;]+)", login.headers["set-cookie"]).group(1)
        browser.headers["Cookie"] = f"prefpipe_session={session}"
        meant = {}
        for _ in range(limit):
            page = browser.get("/label").text
            if 'name="task_id"' not in page:
                break
            shown = {"prompt": pick(page, r'<pre id="prompt">(.*?)</pre>'),
                     "first": pick(page, r'id="response-a">\s*<h2>A</h2>\s*<pre>(.*?)</pre>'),
                     "second": pick(page, r'id="response-b">\s*<h2>B</h2>\s*<pre>(.*?)</pre>')}
            choice, pair_id, pair_choice = against_the_critic(shown, round_pairs)
            submitted = browser.post("/label/submit", data={
                "csrf": pick(page, r'name="csrf" value="([^"]*)"'),
                "task_id": pick(page, r'name="task_id" value="([^"]*)"'), "choice": choice})
            assert submitted.status_code == 303, submitted.text
            if pair_id is not None:
                meant[pair_id] = pair_choice
    return meant


