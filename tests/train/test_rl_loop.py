"""The shared RL loop's seams: GRPO's reward functions, the reference's three sources, callbacks,
and the rule that training imports no verifier or labeling code."""
from __future__ import annotations

import ast
import logging
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import tiny  # noqa: E402

from prefpipe.config.schema import LoRAParams  # noqa: E402
from prefpipe.models.formatting import TokenBatch  # noqa: E402
from prefpipe.models.logprobs import token_logprobs  # noqa: E402
from prefpipe.models.policy_value import PolicyWithValue, apply_lora  # noqa: E402
from prefpipe.train.distributed import Runtime  # noqa: E402
from prefpipe.train.grpo import rollout_rewards, train_grpo  # noqa: E402
from prefpipe.train.loop import TrainContext  # noqa: E402
from prefpipe.train.ppo import train_ppo  # noqa: E402
from prefpipe.train.rl_loop import RolloutInputs  # noqa: E402
from prefpipe.train.rollout import (  # noqa: E402
    Rollout,
    reference_token_logprobs,
    uses_itself_as_reference,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def grpo_inputs(tok) -> RolloutInputs:
    """Two prompts (indices 5 and 2 of the caller's list) with two sampled rows each."""
    responses = [tok(" yes no", add_special_tokens=False)["input_ids"] + [tok.eos_token_id],
                 tok(" maybe", add_special_tokens=False)["input_ids"],
                 tok(" two four sum", add_special_tokens=False)["input_ids"],
                 tok(" ok", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]]
    mask = torch.ones(4, 3)
    batch = TokenBatch(torch.zeros(4, 4, dtype=torch.long), torch.ones(4, 4, dtype=torch.long),
                       torch.ones(4, 4, dtype=torch.long))
    rollout = Rollout(batch, mask, torch.tensor([True, False, False, True]), [0, 0, 1, 1], responses)
    return RolloutInputs(None, None, rollout, [5, 2], Runtime(), "fp32")


def test_reward_funcs_get_trl_keywords_and_their_values_are_summed(tok):
    prompts = [f"prompt {i}" for i in range(6)]
    seen = {}

    def record(**kwargs):
        seen.update(kwargs)
        return [1.0, 0.0, 0.5, 0.25]

    def by_length(completion_ids, **_):
        return [len(ids) for ids in completion_ids]

    rewards = rollout_rewards([record, by_length], tok, prompts, grpo_inputs(tok))
    assert rewards.dtype == torch.float32
    lengths = [len(ids) for ids in grpo_inputs(tok).rollout.response_ids]
    assert rewards.tolist() == [1.0 + lengths[0], 0.0 + lengths[1], 0.5 + lengths[2], 0.25 + lengths[3]]
    assert seen["prompt_index"] == [5, 5, 2, 2]
    assert seen["prompts"] == ["prompt 5", "prompt 5", "prompt 2", "prompt 2"]
    assert seen["finished"] == [True, False, False, True]
    assert seen["completions"][0].split() == ["yes", "no"]  # decoded, special tokens skipped
    assert seen["completion_ids"] == grpo_inputs(tok).rollout.response_ids


def test_a_reward_func_with_the_wrong_count_names_itself(tok):
    def short_list(**_):
        return [1.0]

    with pytest.raises(ValueError, match="short_list.*1 rewards for 4 completions"):
        rollout_rewards([short_list], tok, ["p"] * 6, grpo_inputs(tok))


def test_grpo_needs_a_reward_function(tok):
    policy = PolicyWithValue(tiny.policy_lm(tok), with_value_head=False)
    with pytest.raises(ValueError, match="at least one reward function"):
        train_grpo(policy, None, [], tok, tiny.prompts(), tiny.grpo_params(), 64, 0)


def test_reference_comes_from_the_model_the_adapters_or_the_policy_itself(tok):
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]])
    batch = TokenBatch(ids, torch.ones_like(ids), torch.ones_like(ids))

    def logprobs_of(lm):
        with torch.no_grad():
            return token_logprobs(lm(input_ids=ids, attention_mask=torch.ones_like(ids)).logits, ids)

    policy = PolicyWithValue(tiny.policy_lm(tok, seed=0), with_value_head=False)
    other = tiny.policy_lm(tok, seed=3).eval()
    assert not uses_itself_as_reference(policy, other)
    assert torch.equal(reference_token_logprobs(policy, other, batch, "fp32"), logprobs_of(other))
    assert uses_itself_as_reference(policy, None)
    assert torch.equal(reference_token_logprobs(policy, None, batch, "fp32"), logprobs_of(policy.lm))
    lora = PolicyWithValue(apply_lora(tiny.policy_lm(tok, seed=0), LoRAParams(rank=4)), False)
    with torch.no_grad():  # move the adapters so that "adapters off" is visible
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.add_(0.5)
    assert not uses_itself_as_reference(lora, None)
    base = logprobs_of(tiny.policy_lm(tok, seed=0))
    torch.testing.assert_close(reference_token_logprobs(lora, None, batch, "fp32"), base)
    assert not torch.allclose(logprobs_of(lora.lm), base)


def test_ppo_without_reference_or_lora_is_warned_about(tok, caplog):
    """PPO may run with the sampling policy as its own reference, said in a warning (GRPO refuses:
    tests/train/test_grpo.py)."""
    policy = PolicyWithValue(tiny.policy_lm(tok), with_value_head=True)
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        history = train_ppo(policy, None, lambda rollout: torch.zeros(len(rollout.finished)), tok,
                            tiny.prompts(), tiny.ppo_params(iterations=1), 64, 0)
    assert "sampling policy is its own reference" in caplog.text
    assert abs(history[0]["kl_nats"]) < 1e-6  # the reference is the sampling policy itself


def test_a_callback_ends_the_rl_loop_after_its_iteration(tok):
    seen = []

    def stop_after_two(info) -> bool:
        seen.append((info.trainer, info.step, info.total_steps, info.metrics["step"]))
        return info.step == 1

    policy = PolicyWithValue(tiny.policy_lm(tok), with_value_head=False)
    context = TrainContext(callbacks=[stop_after_two])
    history = train_grpo(policy, tiny.policy_lm(tok).eval(),
                         [lambda completion_ids, **_: [float(len(ids) % 2) for ids in completion_ids]],
                         tok, tiny.prompts(), tiny.grpo_params(iterations=4), 64, 0, context)
    assert [row["step"] for row in history] == [0, 1]
    assert seen == [("train_policy (grpo)", 0, 4, 0), ("train_policy (grpo)", 1, 4, 1)]


def test_training_imports_no_labeling_or_verifier_code():
    """GRPO's rewards arrive as callables: prefpipe/train knows neither labels nor verifiers."""
    offenders = []
    for path in sorted((ROOT / "prefpipe" / "train").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names
                          if n.startswith(("prefpipe.label", "prefpipe.verify"))]
    assert not offenders


def test_rollouts_of_prompts_longer_than_the_context_keep_their_end_and_warn_once(tok, caplog):
    long = " ".join(tiny.WORDS[i % len(tiny.WORDS)] for i in range(200))  # ~200 tokens, 64 positions
    policy = PolicyWithValue(tiny.policy_lm(tok), with_value_head=False)
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        history = train_grpo(policy, tiny.policy_lm(tok).eval(),
                             lambda completion_ids, **_: [0.0] * len(completion_ids), tok,
                             [long, long, "yes no"], tiny.grpo_params(iterations=1), 64, 0)
    assert len(history) == 1
    cut = [r.message for r in caplog.records if "prompts are longer than" in r.message]
    assert cut == ["2 of 3 prompts are longer than the 56 tokens model.n_positions 64 leaves beside "
                   "policy.grpo.sampling.max_new_tokens 8: they keep their last 56 tokens; raise "
                   "model.n_positions (up to the positions the model reads) or lower "
                   "policy.grpo.sampling.max_new_tokens to keep more"]
