"""End-to-end fixtures: a copy of the repository with tiny params, and a real Prefect server."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("prefpipe", "tasks", "flows", "dvc.yaml", "params.yaml", ".dvc/config", ".dvc/.gitignore",
          ".dvcignore", "data/inputs/.gitkeep", "pyproject.toml")

# fp32 pinned: `auto` picks bf16 on CPUs with AMX, and the tiny runs' labels (hence which prompts
# have decisive pairs) would then differ from machine to machine
TINY = {
    "runtime": {"threads": 1, "precision": "fp32"},
    "model": {"n_layer": 1, "n_embd": 64, "n_head": 2, "n_positions": 96, "vocab_size": 400},
    "world": {"sft_examples": 4000, "max_operand": 5},
    "sft": {"optim": {"epochs": 3.0, "batch_size": 32, "lr": 1.0e-2, "warmup_steps": 5}},
    "generate": {"prompts": 120, "candidates_per_prompt": 4, "pairs_per_prompt": 2,
                 "sampling": {"max_new_tokens": 32, "batch_size": 64}},
    "reward": {"optim": {"epochs": 1.0, "batch_size": 16, "warmup_steps": 2}},
    "policy": {"dpo": {"optim": {"epochs": 1.0, "batch_size": 16, "warmup_steps": 2}}},
    # 40 prompts on a one-layer model: the gates' verdicts are written but don't stop the run
    "evaluate": {"prompts": 40, "sampling": {"max_new_tokens": 32, "batch_size": 40},
                 "enforce_gates": False},
}

# TINY, smaller still: for end-to-end tests that check what runs, not what is learnt. Its ~12
# decisive pairs fall on ~10 prompts: at the default val_fraction (0.15) the reward model's
# held-out side is empty on some CPUs (their numerics pick other pairs); 0.4 leaves both sides some
QUICK = {"world": {"sft_examples": 1500}, "sft": {"optim": {"epochs": 2.0}},
         "generate": {"prompts": 48, "sampling": {"max_new_tokens": 24}}, "evaluate": {"prompts": 24},
         "reward": {"val_fraction": 0.4}}


def load_bench_script(filename: str, module_name: str, patch: pytest.MonkeyPatch):
    """bench/FILENAME imported as `module_name` (registered in sys.modules through `patch`, for its
    dataclasses, which look their module up there; undone when `patch` is)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(module_name, ROOT / "bench" / filename)
    module = importlib.util.module_from_spec(spec)
    patch.setitem(sys.modules, module_name, module)
    spec.loader.exec_module(module)
    return module


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def env_for(repo: Path, api_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PREFPIPE_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PREFECT_HOME"] = str(repo / ".prefect")
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


class Repo:
    """A throwaway copy of the project: its own git, DVC, params, store and Prefect home."""

    def __init__(self, path: Path, api_url: str | None):
        self.path, self.api_url = path, api_url

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def set_params(self, override: dict) -> None:
        (self.path / "params.yaml").write_text(yaml.safe_dump(merge(self.params(), override)))

    def run(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        # A session of its own, so a timeout kills the whole tree (dvc -> stage -> torch).
        process = subprocess.Popen(list(args), cwd=self.path, env=env_for(self.path, self.api_url),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        result = subprocess.CompletedProcess(list(args), process.returncode, stdout, stderr)
        if check and result.returncode != 0:
            raise AssertionError(f"{args} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
                                 f"{result.stderr[-3000:]}")
        return result

    def prefpipe(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "flows.cli", *args, check=check)

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("dvc", *args, check=check)

    def lock_hashes(self) -> dict[str, str]:
        lock = yaml.safe_load((self.path / "dvc.lock").read_text())
        return {f"{stage}:{out['path']}": out["md5"]
                for stage, spec in lock["stages"].items() for out in spec.get("outs", [])}


def copy_project(path: Path) -> None:
    """The project's code, params and DVC set-up copied into `path`, a git repository of its own."""
    for name in COPIED:
        source, target = ROOT / name, path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, target)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)


def make_repo(path: Path, api_url: str | None = None, override: dict | None = None) -> Repo:
    copy_project(path)
    repo = Repo(path, api_url)
    repo.set_params(merge(TINY, override or {}))
    return repo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> str:
    """A real Prefect API server on loopback, for the whole session."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = env_for(home, api_url)
    env["PREFECT_UI_ENABLED"] = "false"
    log = open(home / "server.log", "w")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
         "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited: {(home / 'server.log').read_text()}")
        time.sleep(1)
    else:
        process.terminate()
        raise RuntimeError(f"prefect server not healthy: {(home / 'server.log').read_text()}")
    yield api_url
    process.terminate()
    process.wait(timeout=30)
    log.close()


class S3Server:
    """moto's standalone server: a real S3-compatible endpoint on loopback (no MinIO package exists
    here). moto accepts any key pair; `env()` gives a process the standard AWS variables for it, with
    the distinctive dummy credentials that the secrets checks grep produced files and logs for."""

    access_key = "AKIAPREFPIPETESTKEY0"
    secret_key = "prefpipe-test-secret-d41d8cd98f00b204e980"

    def __init__(self, home: Path):
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log = open(home / "moto.log", "w")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                httpx.get(self.endpoint_url, timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto server did not start: {(home / 'moto.log').read_text()}")

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3Server:
    """A real S3 endpoint on loopback for the whole session; each test makes buckets of its own."""
    server = S3Server(tmp_path_factory.mktemp("s3-server"))
    yield server
    server.stop()


class AnnotationApp:
    """`prefpipe label serve` in a copy of the project, as its user starts it (no Prefect API)."""

    def __init__(self, repo: Repo):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env_for(repo.path), "PREFPIPE_ROOT": str(repo.path)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "label", "serve", "--port", str(self.port)], cwd=repo.path,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/login", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"annotation app did not start: {self.process.stdout.read()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def flow_runs(api_url: str) -> list[dict]:
    response = httpx.post(f"{api_url}/flow_runs/filter", json={"sort": "EXPECTED_START_TIME_ASC"})
    response.raise_for_status()
    return response.json()


def task_runs(api_url: str, flow_run_id: str) -> list[dict]:
    response = httpx.post(f"{api_url}/task_runs/filter",
                          json={"flow_runs": {"id": {"any_": [flow_run_id]}}})
    response.raise_for_status()
    return response.json()


def write_round_one(store=None, seed: int = 0) -> None:
    """In the current folder, the round stage's outputs for round 1 as it writes them on a fresh
    store (tasks/round.py: every training prompt, sampled from SFT, no earlier pairs), and round 1
    started in `store` if one is given: for tests that run a later stage's recipe by itself."""
    import json as _json

    import pyarrow as _pa

    from prefpipe.store import read_parquet, write_parquet
    from tasks import paths
    from tasks.round import _pairs_table

    train = [r for r in read_parquet(paths.PROMPTS).to_pylist() if r["split"] == "train"]
    write_parquet(_pa.Table.from_pylist(train), paths.ROUND_PROMPTS)
    write_parquet(_pairs_table([]), paths.ROUND_HISTORY)
    info = {"round": 1, "generator_version": "sft", "generator_hash": "", "seed": seed, "reason": "test"}
    paths.ROUND_INFO.write_text(_json.dumps(info))
    if paths.SFT_MODEL.is_dir() and not paths.GENERATOR_MODEL.exists():
        shutil.copytree(paths.SFT_MODEL, paths.GENERATOR_MODEL)
    if store is not None:
        store.registry.start_round(1, "sft", "", "", len(train), 0, "test",
                                   prompt_ids=[r["prompt_id"] for r in train], flow_run_id="")


def lingering_processes(basetemp: Path, grace_s: float = 10.0) -> list[str]:
    """Processes the suite started that are still alive after every fixture was torn down: this
    process's descendants, and any process (reparented or not) working under the suite's temp dir.
    Waits up to `grace_s` for ones already on their way out."""
    import psutil

    def alive() -> list[psutil.Process]:
        found = {p.pid: p for p in psutil.Process().children(recursive=True)}
        for process in psutil.process_iter(["cwd"]):
            cwd = process.info.get("cwd") or ""
            if process.pid != os.getpid() and cwd.startswith(str(basetemp)):
                found[process.pid] = process
        return [p for p in found.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    deadline = time.monotonic() + grace_s
    while (processes := alive()) and time.monotonic() < deadline:
        time.sleep(0.5)
    described = []
    for process in processes:
        try:
            described.append(f"pid {process.pid}: {' '.join(process.cmdline())[:200]}")
        except psutil.Error:
            continue
    return described


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """No orphans: after the session's fixtures are torn down (the runner's own sessionfinish runs
    first), every server, worker and browser the tests started must be gone, or the suite fails."""
    if getattr(session.config, "workerinput", None) is not None:
        return
    basetemp = session.config._tmp_path_factory.getbasetemp()
    leftovers = lingering_processes(basetemp)
    if leftovers:
        session.config.get_terminal_writer().line(
            "error: processes the tests started are still running:\n  " + "\n  ".join(leftovers), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
