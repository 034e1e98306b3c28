"""infra/Dockerfile builds from what the repository has: every COPY source exists and is not left out
by .dockerignore, the environment is requirements.lock's (torch at its pinned version, for the
variant's index), the image runs as a user and starts a worker in the checkout. `docker build` itself
runs only where a Docker daemon answers."""
from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess

import pytest

from tests.conftest import ROOT

DOCKERFILE = ROOT / "infra" / "Dockerfile"
NEEDED = ("requirements.lock", "pyproject.toml", "README.md", "prefpipe", "flows", "tasks", "dvc.yaml",
          "params.yaml", "infra")  # what the image's `uv pip install .` and its docs need


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n(\s*#.*\n)*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def args_of(name: str) -> list[str]:
    return [args for instruction, args in instructions() if instruction == name]


def ignored_patterns() -> list[str]:
    return [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in ignored_patterns())


def test_every_copy_source_exists_and_reaches_the_build():
    copies = [shlex.split(args) for args in args_of("COPY")]
    local = [words for words in copies if not any(w.startswith("--from") for w in words)]
    assert local, "the Dockerfile copies nothing from the repository"
    for *sources, _target in local:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert source == "." or not ignored(source), f"COPY {source}: left out by .dockerignore"
    for name in NEEDED:
        assert (ROOT / name).exists() and not ignored(name), f"{name} must reach the image"
    for name in (".venv", ".git", "store", "models", ".prefect", "checkpoints"):
        assert ignored(name), f".dockerignore must leave {name} out of the image"


def test_the_environment_is_requirements_lock():
    """The lock the image installs is requirements.lock, torch included at its pinned version: the
    Dockerfile's own shell runs on the real lock here."""
    copied = [s for args in args_of("COPY") for s in shlex.split(args)[:-1] if not s.startswith("--")]
    assert "requirements.lock" in copied
    other_locks = [s for s in copied if re.search(r"requirements.*\.(txt|in)$|\.lock$", s)]
    assert other_locks == ["requirements.lock"]
    (install,) = [args for args in args_of("RUN") if "uv pip install -r" in args]
    assert "requirements.lock" in install and "requirements.in" not in install
    pinned = re.search(r"^torch==([^+\s]+)", (ROOT / "requirements.lock").read_text(), re.M)[1]
    version_line = re.search(r'torch_version="\$\((.+?)\)"', install)[1]
    assert subprocess.run(["sh", "-c", version_line], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip() == pinned
    rest_line = re.search(r"(grep -v [^>]+requirements\.lock)", install)[1]
    rest = subprocess.run(["sh", "-c", rest_line], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout
    lock = (ROOT / "requirements.lock").read_text()
    assert rest.count("==") == lock.count("==") - 1 and not re.search(r"^torch==", rest, re.M)


def test_the_image_runs_as_a_user_in_the_checkout_and_starts_a_worker():
    k8s = json.loads((ROOT / "infra" / "k8s" / "gpu-job-template.json").read_text())
    root = k8s["variables"]["properties"]["prefpipe_root"]["default"]
    assert args_of("USER")[-1] not in {"root", "0"}
    env = " ".join(args_of("ENV"))
    assert f"PREFPIPE_ROOT={root}" in env and f"PYTHONPATH={root}" in env
    assert json.loads(args_of("ENTRYPOINT")[-1])[0] == "tini"
    assert "prefect worker start" in args_of("CMD")[-1]
    assert any("TORCH_VARIANT" in args for args in args_of("ARG"))  # the CPU variant is a build arg


def docker_daemon() -> str | None:
    """Why no Docker daemon can build here, or None when one answers."""
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired) as err:
        return f"no docker command or daemon: {err}"
    return None if info.returncode == 0 else f"no Docker daemon: {info.stderr.strip()[:200]}"


@pytest.mark.slow
def test_the_cpu_image_builds():
    reason = docker_daemon()
    if reason:
        pytest.skip(reason)
    build = subprocess.run(["docker", "build", "-f", "infra/Dockerfile", "--build-arg",
                            "BASE_IMAGE=ubuntu:22.04", "--build-arg", "TORCH_VARIANT=cpu",
                            "-t", "prefpipe-test:cpu", "."],
                           cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert build.returncode == 0, build.stderr[-3000:]
    user = subprocess.run(["docker", "run", "--rm", "prefpipe-test:cpu", "sh", "-c",
                           "id -u; prefpipe --help"],
                          capture_output=True, text=True, timeout=300)
    assert user.returncode == 0 and user.stdout.split()[0] != "0", user.stderr
