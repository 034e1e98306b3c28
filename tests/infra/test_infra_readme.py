"""infra/README.md names only files the repository has, names every file of infra/'s cluster set-up,
and its snippets are accepted by what reads them: the params.yaml block by prefpipe's config loader,
the `dvc remote` commands by dvc, the pool and deploy commands are the ones the tests run."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from prefpipe.config import load_params
from tests.conftest import ROOT, env_for, merge

README = ROOT / "infra" / "README.md"
# a repository path: a file with one of these endings, or anything under these folders; never the
# tail of a URL, a host name or a $VARIABLE (the look-behind)
PATH = re.compile(r"(?<![\w/.$:~-])((?:[\w.-]+/)*[\w.-]+\.(?:ya?ml|json|py|md|lock|toml)\b"
                  r"|(?:[\w.-]+/)+Dockerfile|\.dockerignore|\.dvc/config|(?:infra|tests|flows|tasks|docs)/[\w./-]*)")


def text() -> str:
    return README.read_text()


def named_paths() -> set[str]:
    return {match.rstrip(".") for match in PATH.findall(text())}


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text(), re.S)


def test_every_path_the_readme_names_exists():
    named = named_paths()
    assert len(named) >= 15 and "infra/k8s/gpu-job-template.json" in named  # the pattern finds them
    assert "s3://your-bucket/dvc" not in named and "deploy/prefect-server" not in named
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"infra/README.md names files the repository lacks: {missing}"


def test_the_readme_names_every_file_of_the_setup():
    files = [p for folder in ("k8s", "docker") for p in (ROOT / "infra" / folder).iterdir()]
    files += [ROOT / "infra" / "Dockerfile", ROOT / ".dockerignore", ROOT / "infra" / "prefect.yaml"]
    unnamed = sorted(p.relative_to(ROOT).as_posix() for p in files
                     if p.relative_to(ROOT).as_posix() not in named_paths())
    assert not unnamed, f"infra/README.md does not say what these are: {unnamed}"


def test_the_params_snippet_is_valid_params(tmp_path):
    (snippet,) = [block for block in code_blocks("yaml") if "work_pools" in block]
    override = yaml.safe_load(snippet)
    assert override["orchestration"]["work_pools"] == {"train_policy": "gpu", "generate": "gpu"}
    params_file = tmp_path / "params.yaml"
    defaults = yaml.safe_load((ROOT / "params.yaml").read_text())
    params_file.write_text(yaml.safe_dump(merge(defaults, override)))
    params = load_params(params_file)
    assert params.orchestration.work_pools == {"train_policy": "gpu", "generate": "gpu"}
    assert params.artifacts.uri == override["artifacts"]["uri"]


def test_the_dvc_remote_commands_set_an_s3_remote_with_its_endpoint(tmp_path):
    commands = [line.split("#")[0].strip() for block in code_blocks("bash") for line in block.splitlines()
                if line.startswith("dvc remote")]
    assert len(commands) == 2
    dvc = str(Path(sys.executable).parent / "dvc")
    env = {**env_for(tmp_path), "DVC_NO_ANALYTICS": "1"}
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    for command in commands:
        subprocess.run([dvc, *command.split()[1:]], cwd=tmp_path, env=env, check=True, capture_output=True)
    config = (tmp_path / ".dvc" / "config").read_text()
    assert "remote = storage" in config and "url = s3://" in config and "endpointurl = https://" in config


def test_the_commands_are_the_ones_the_tests_run():
    """The pool and deploy commands of the README are those tests/flows/test_prefect_yaml.py runs
    against a real server (there as argument lists)."""
    readme = " ".join(text().split())
    for command in ("prefect work-pool create prefpipe-cpu --type process",
                    "prefect work-pool create gpu --type kubernetes --base-job-template "
                    "infra/k8s/gpu-job-template.json",
                    "env -u PREFPIPE_ROOT prefect deploy --prefect-file infra/prefect.yaml --all",
                    "kubectl -n prefpipe create secret generic prefpipe-s3"):
        assert command in readme, command
    test = (ROOT / "tests" / "flows" / "test_prefect_yaml.py").read_text()
    assert '"--base-job-template", "infra/k8s/gpu-job-template.json"' in test
    assert '"deploy", "--prefect-file", "infra/prefect.yaml", "--all"' in test
