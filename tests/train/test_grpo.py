"""GRPO's forward passes: the old log-probs come from the sampling pass, the reference is read only
when kl_beta > 0, and a KL term without a reference is an error naming the key."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import tiny  # noqa: E402

from prefpipe.errors import ConfigError  # noqa: E402
from prefpipe.models.policy_value import PolicyWithValue  # noqa: E402
from prefpipe.train.grpo import train_grpo  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def odd_length(completion_ids, **_):
    return [float(len(ids) % 2) for ids in completion_ids]


def counted(module: torch.nn.Module) -> list[int]:
    """A list that grows by one each time `module`'s forward runs (a hook on the real module)."""
    calls: list[int] = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


def run(tok, kl_beta: float, with_reference: bool, iterations: int = 2):
    """(history, full forwards of the policy, forwards of the reference) of a short GRPO run."""
    policy = PolicyWithValue(tiny.policy_lm(tok), with_value_head=False)
    policy_forwards = counted(policy)  # the trainer's forwards; sampling calls policy.lm directly
    reference = tiny.policy_lm(tok, seed=3).eval() if with_reference else None
    reference_forwards = counted(reference) if reference is not None else []
    params = tiny.grpo_params(iterations=iterations, kl_beta=kl_beta)
    history = train_grpo(policy, reference, odd_length, tok, tiny.prompts(), params, 64, 0)
    return history, len(policy_forwards), len(reference_forwards), params


def minibatch_steps(params) -> int:
    rows = params.prompts_per_iteration * params.group_size
    return params.iterations * params.epochs * -(-rows // params.minibatch_size)


def test_kl_beta_zero_runs_no_reference_and_no_old_logprob_forward(tok):
    history, policy_forwards, reference_forwards, params = run(tok, 0.0, with_reference=True)
    assert reference_forwards == 0
    assert policy_forwards == minibatch_steps(params)  # one per optimizer step, none to score
    assert len(history) == 2
    assert all("kl_nats" not in row and "kl_k3_token" not in row for row in history)


def test_kl_beta_reads_the_reference_once_per_iteration(tok):
    history, policy_forwards, reference_forwards, params = run(tok, 0.04, with_reference=True)
    assert reference_forwards == params.iterations
    assert policy_forwards == minibatch_steps(params)
    assert all(row["kl_nats"] > 0 and "kl_k3_token" in row for row in history)


def test_kl_beta_zero_needs_no_reference(tok):
    history, _, _, _ = run(tok, 0.0, with_reference=False, iterations=1)
    assert len(history) == 1 and "reward" in history[0]


def test_a_kl_term_without_a_reference_is_an_error_naming_the_key(tok):
    with pytest.raises(ConfigError, match=r"policy\.grpo\.kl_beta is 0\.04 .*no reference"):
        run(tok, 0.04, with_reference=False)
