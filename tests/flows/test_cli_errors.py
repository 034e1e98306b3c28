"""Every CLI error a user can reach with bad input: one line on stderr, exit code 2, no traceback
(unless `prefpipe --debug`). Each runs `python -m flows.cli` in a copy of the repository, as a user
would, so no test touches this checkout's store."""
from __future__ import annotations

import sys

import pytest

from tests.conftest import free_port, make_repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_repo(tmp_path_factory.mktemp("cli-errors"))


def fails_with_one_line(repo, *args: str) -> str:
    """Run `prefpipe ARGS`; assert exit code 2 and a single `error: ...` line; return that line."""
    result = repo.run(sys.executable, "-m", "flows.cli", *args, check=False, timeout=300)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_bad_annotator_id(repo):
    line = fails_with_one_line(repo, "label", "annotators", "add", "bad id")
    assert "'bad id'" in line


@pytest.mark.parametrize("action", ["add", "revoke"])
def test_a_hostile_annotator_id_names_the_id_and_the_allowed_form(repo, action):
    line = fails_with_one_line(repo, "label", "annotators", action, "bad id<script>")
    assert "'bad id<script>'" in line and "1-64 letters, digits, '_', '.', '@' or '-'" in line


def test_missing_import_file(repo):
    line = fails_with_one_line(repo, "label", "import", "missing.jsonl", "--format", "trl")
    assert "missing.jsonl" in line


def test_bad_import_row_names_file_and_row(repo):
    (repo.path / "bad.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\nnot json\n')
    line = fails_with_one_line(repo, "label", "import", "bad.jsonl", "--format", "trl")
    assert "bad.jsonl" in line and "2" in line


def test_bad_params_name_the_key(repo):
    (repo.path / "bad.yaml").write_text("generate:\n  sampling: {temperature: hot}\n")
    line = fails_with_one_line(repo, "params", "--file", "bad.yaml")
    assert "generate.sampling.temperature" in line


def test_a_missing_model_folder_names_model_policy(repo):
    # Issue 15: `prefpipe params` said 0 and `generate` died with ~280 lines of hub traceback.
    (repo.path / "own_model.yaml").write_text("model: {policy: data/inputs/my-model}\n")
    line = fails_with_one_line(repo, "params", "--file", "own_model.yaml")
    assert "model.policy: no model folder 'data/inputs/my-model'" in line


def test_a_labeler_your_prompts_cannot_feed_names_its_routing_key(repo):
    model = repo.path / "data" / "inputs" / "my-model"
    model.mkdir(parents=True, exist_ok=True)
    for name, text in (("config.json", '{"n_positions": 256}'), ("model.safetensors", ""),
                       ("tokenizer.json", "{}")):
        (model / name).write_text(text)
    (repo.path / "data" / "inputs" / "mine.jsonl").write_text('{"prompt": "2+2?", "category": "math"}\n')
    (repo.path / "own_prompts.yaml").write_text(
        "model: {policy: data/inputs/my-model}\ndata: {prompts: data/inputs/mine.jsonl}\n"
        "label:\n  routing: {math: verifier, default: critic}\n"
        "  critic: {judge: http, http: {model: judge}}\n")
    line = fails_with_one_line(repo, "params", "--file", "own_prompts.yaml")
    assert "label.routing.math: 'verifier'" in line and "use 'critic'" in line


def test_missing_params_file(repo):
    assert "nowhere.yaml" in fails_with_one_line(repo, "params", "--file", "nowhere.yaml")


@pytest.mark.parametrize("args", [("label", "import", "x.jsonl", "--format", "nope"),
                                  ("label", "export", "out.jsonl", "--format", "nope"),
                                  ("no-such-command",)], ids=["import", "export", "command"])
def test_bad_format_or_command_is_one_usage_line(repo, args):
    line = fails_with_one_line(repo, *args)
    assert "invalid choice" in line and "--help" in line


def test_debug_shows_the_traceback(repo):
    (repo.path / "bad.yaml").write_text("generate:\n  sampling: {temperature: hot}\n")
    result = repo.run(sys.executable, "-m", "flows.cli", "--debug", "params", "--file", "bad.yaml",
                      check=False, timeout=300)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "ParamsError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_run_with_an_unknown_stage_fails_before_prefect_starts(repo):
    line = fails_with_one_line(repo, "run", "--stage", "no_such_stage")
    assert "no_such_stage" in line and "dvc.yaml has" in line
    assert not (repo.path / "dvc.lock").exists()


def test_run_against_a_prefect_api_that_does_not_answer_says_so(repo):
    repo.api_url = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    try:
        line = fails_with_one_line(repo, "run")
    finally:
        repo.api_url = None
    assert "PREFECT_API_URL" in line and "no Prefect server answers" in line
    assert not (repo.path / "dvc.lock").exists()


def test_run_with_bad_params_names_the_key(repo):
    params = (repo.path / "params.yaml").read_text()
    try:
        (repo.path / "params.yaml").write_text(params + "sft_typo: {}\n")
        assert "sft_typo" in fails_with_one_line(repo, "run")  # one line: no Prefect server started
        assert not (repo.path / ".prefect" / "logs").exists()  # nor a flow run's log
    finally:
        (repo.path / "params.yaml").write_text(params)
