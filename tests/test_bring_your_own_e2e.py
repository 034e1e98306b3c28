"""End to end: the README's "Bring your own model and prompts" walk-through, followed as written.

A small real Hugging Face GPT-2 folder, the 150-prompt example file, the test judge started with the
README's own command line, the README's params block merged into the default params.yaml (every
other knob at its default: sizes, splits, epochs), and the README's commands run from a shell whose
first `python` is not the project's. Slow (a couple of minutes): real DVC, Prefect and stages."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from transformers import GPT2Config, GPT2LMHeadModel

from prefpipe.world.tokenizer import train_tokenizer
from tests.conftest import ROOT, env_for, free_port, make_repo, merge

pytestmark = pytest.mark.slow
README = ROOT / "README.md"
EXAMPLE_PROMPTS = ROOT / "docs" / "examples" / "prompts.jsonl"
JUDGE_SCRIPT = "tests/label/critic/openai_server.py"


def walkthrough() -> str:
    section = README.read_text().split("## Bring your own model and prompts", 1)[1]
    return re.split(r"\n##+ ", section.split("### Walk-through", 1)[1], maxsplit=1)[0]


def blocks(text: str, language: str) -> list[str]:
    return [re.sub(r"^ {3}", "", b, flags=re.M) for b in
            re.findall(rf"```{language}\n(.*?)```", text, re.S)]


def tiny_hf_model(folder: Path, texts: list[str]) -> Path:
    """A real, randomly initialised GPT-2 with a BPE tokenizer trained on the prompts."""
    tokenizer = train_tokenizer(texts, 500)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def walked(tmp_path_factory, prefect_server):
    """The walk-through's steps in a fresh copy of the project; yields (repo, run output)."""
    repo = make_repo(tmp_path_factory.mktemp("byo"), prefect_server)
    shutil.copy2(ROOT / "params.yaml", repo.path / "params.yaml")  # defaults, not the tests' tiny ones
    (repo.path / "tests" / "label" / "critic").mkdir(parents=True)
    shutil.copy2(ROOT / JUDGE_SCRIPT, repo.path / JUDGE_SCRIPT)
    (repo.path / "docs" / "examples").mkdir(parents=True)
    shutil.copy2(EXAMPLE_PROMPTS, repo.path / "docs" / "examples" / "prompts.jsonl")
    (repo.path / ".venv").symlink_to(Path(sys.executable).parent.parent)

    wrong = repo.path.parent / "wrong-bin"  # a shell whose `python` is not the project's
    wrong.mkdir()
    for name in ("python", "python3"):
        (wrong / name).write_text("#!/bin/sh\necho 'wrong python' >&2\nexit 3\n")
        (wrong / name).chmod(0o755)
    env = env_for(repo.path, prefect_server)
    env["PATH"] = f"{wrong}{os.pathsep}{env['PATH']}"
    env.pop("VIRTUAL_ENV", None)
    # .venv/bin/prefpipe belongs to this checkout's editable install: the copy is the project
    env["PREFPIPE_ROOT"] = str(repo.path)

    text = walkthrough()
    copy_step, judge_step, run_step = blocks(text, "bash")
    # step 1: the model copy names the user's own folder; the prompt copy runs as printed
    model_line, prompts_line = [line for line in copy_step.splitlines() if line.startswith("cp ")]
    target = shlex.split(model_line.split("#")[0])[-1]
    prompts = [json.loads(line)["prompt"] for line in EXAMPLE_PROMPTS.read_text().splitlines()]
    tiny_hf_model(repo.path / target, prompts)
    subprocess.run(prompts_line.split("#")[0], shell=True, cwd=repo.path, env=env, check=True)
    # step 2: the judge, by the README's command line, on a free port
    port = free_port()
    judge_args = shlex.split(judge_step.strip().rstrip("&").replace("8123", str(port)))
    judge = subprocess.Popen(judge_args, cwd=repo.path, env=env, stdout=subprocess.PIPE, text=True)
    assert judge.stdout.readline().startswith("serving"), "the test judge did not start"
    # step 3: the README's params block, merged into the default params.yaml
    edits = yaml.safe_load(blocks(text, "yaml")[0].replace("8123", str(port)))
    params = yaml.safe_load((repo.path / "params.yaml").read_text())
    (repo.path / "params.yaml").write_text(yaml.safe_dump(merge(params, edits)))
    # step 4: the README's commands, one by one
    outputs = []
    try:
        for line in run_step.splitlines():
            command = line.split("#")[0].strip()
            if not command:
                continue
            result = subprocess.run(command, shell=True, cwd=repo.path, env=env, capture_output=True,
                                    text=True, timeout=1500)
            assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            outputs.append(result.stdout + result.stderr)
    finally:
        judge.terminate()
        judge.wait(timeout=10)
    yield repo, outputs


def metrics(repo, stage: str) -> dict:
    return json.loads((repo.path / "metrics" / f"{stage}.json").read_text())


def test_every_step_succeeds_with_default_sizes_and_splits(walked):
    repo, (params_out, run_out, repro_out) = walked
    assert "params ok" in params_out
    assert "wrong python" not in run_out + repro_out
    assert "Running stage" not in repro_out  # `dvc repro` has nothing to do after the run
    prompts = pq.read_table(repo.path / "data" / "prompts.parquet").to_pylist()
    assert len(prompts) == len(EXAMPLE_PROMPTS.read_text().splitlines()) == 150
    train = sum(p["split"] == "train" for p in prompts)
    generated = metrics(repo, "generate")
    assert generated["prompts_requested"] == 2000 and generated["prompts"] == train
    assert "generate.prompts 2000 > " in run_out  # the cap is said, not silent
    evaluated = metrics(repo, "evaluate")
    assert evaluated["prompts"] == len(prompts) - train > 0


def test_math_pairs_go_to_the_verifier_and_the_rest_to_the_http_judge(walked):
    """Math rows carry answers, so their pairs are checked (a random model's answers verify alike,
    so they pass to the critic, as label.verifier.undecided says); every pair gets a label."""
    repo, _ = walked
    labelled = metrics(repo, "label")
    pairs = pq.read_table(repo.path / "data" / "pairs.parquet").to_pylist()
    math_pairs = sum(p["category"] == "math" for p in pairs)
    verified = labelled.get("count_verifier", 0) + labelled["verifier_undecided"]
    assert math_pairs > 0 and verified == math_pairs, labelled
    assert "verifier_unverifiable" not in labelled  # every math row has its answer
    assert labelled["count_critic"] == len(pairs) - labelled.get("count_verifier", 0)
    assert labelled["preferences"] > 0 and labelled["degenerate_warnings"] == 0, labelled


def test_the_reward_model_validates_on_prompts_of_its_own(walked):
    repo, _ = walked
    reward = metrics(repo, "reward")
    assert reward["val_pairs"] > 0 and 0.0 <= reward["val_label_accuracy"] <= 1.0


def test_the_users_model_is_tracked(walked):
    repo, _ = walked
    pointer = json.loads((repo.path / "models" / "sources" / "policy.json").read_text())
    assert pointer["model"] == "data/inputs/my-model" and len(pointer["sha256"]) == 64


def test_the_report_gives_a_critic_judged_and_a_length_controlled_win_rate(walked):
    """No gold on your prompts: the critic (the http judge, both orders) judges policy vs SFT, and
    the length-controlled rate comes from its outcomes; the gates ran and wrote their verdicts."""
    repo, _ = walked
    evaluated = metrics(repo, "evaluate")
    assert "win_rate" not in evaluated  # no gold
    for key in ("judge_win_rate", "lc_win_rate"):
        assert 0.0 <= evaluated[f"{key}_low"] <= evaluated[key] <= evaluated[f"{key}_high"] <= 1.0
    judged = evaluated["judge_wins"] + evaluated["judge_ties"] + evaluated["judge_losses"]
    assert judged == evaluated["prompts"]
    gates = json.loads((repo.path / "metrics" / "gates.json").read_text())
    assert gates["verdicts"]["win_rate_low"]["status"] == "skipped" and gates["passed"] is True
    html = (repo.path / "reports" / "evaluation.html").read_text()
    assert "critic" in html.lower() or "judge" in html.lower()
