"""The RL loop's attention under bf16 on a CPU: the policy and the frozen reference compute it
eagerly for the whole run (sampling, scoring, minibatch steps), as `precision.attention_for`
picks it, and get their own implementation back afterwards, also when the run fails; fp32 keeps
SDPA throughout."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tiny  # noqa: E402

from prefpipe.config.schema import LoRAParams  # noqa: E402
from prefpipe.models.policy_value import PolicyWithValue, apply_lora  # noqa: E402
from prefpipe.train.grpo import train_grpo  # noqa: E402
from prefpipe.train.loop import TrainContext  # noqa: E402
from prefpipe.train.ppo import train_ppo  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def attention(model) -> str:
    return model.config._attn_implementation


def run_grpo(tok, precision: str, **overrides):
    """(policy, reference, [(policy's, reference's) attention seen by each reward call and each
    step callback], history) of a GRPO run with a frozen reference."""
    policy = PolicyWithValue(tiny.policy_lm(tok), with_value_head=False)
    reference = tiny.policy_lm(tok).eval().requires_grad_(False)
    seen = []

    def reward(completion_ids, **_):
        seen.append(("score", attention(policy.lm), attention(reference)))
        return [float(len(ids) % 2) for ids in completion_ids]

    def callback(info) -> None:
        seen.append(("step", attention(info.model.lm), attention(reference)))

    params = tiny.grpo_params(**{"iterations": 2, "kl_beta": 0.1, **overrides})
    history = train_grpo(policy, reference, reward, tok, tiny.prompts(), params, 64, 0,
                         TrainContext(precision=precision, callbacks=[callback]))
    return policy, reference, seen, history


@pytest.mark.parametrize(("precision", "inside"), [("bf16", "eager"), ("fp32", "sdpa")])
def test_grpo_under_bf16_runs_eager_attention_and_restores_sdpa(tok, precision, inside):
    policy, reference, seen, _ = run_grpo(tok, precision)
    assert seen == [(where, inside, inside) for _ in range(2) for where in ("score", "step")]
    assert attention(policy.lm) == attention(reference) == "sdpa"


def test_bf16_sampled_logprobs_match_the_training_forward(tok):
    """One on-policy minibatch per iteration: its approx_kl to the log-probs the sampling pass
    recorded is as small as fp32's (7e-15 here) when both passes compute attention eagerly (0.0
    here). Both in SDPA it is 2.5e-12 (cached vs full-row kernels); eager steps after SDPA
    sampling, 5e-8."""
    _, _, _, history = run_grpo(tok, "bf16", epochs=1, minibatch_size=16, iterations=1)
    assert history[0]["approx_kl"] < 1e-13


def test_ppo_with_lora_under_bf16_runs_eager_and_restores_sdpa(tok):
    """No frozen reference: the LoRA policy with adapters off is the reference (same module)."""
    policy = PolicyWithValue(apply_lora(tiny.policy_lm(tok), LoRAParams(rank=4)), with_value_head=True)
    seen = []

    def reward_fn(rollout):
        seen.append(attention(policy.lm))
        return rollout.lengths.float()

    train_ppo(policy, None, reward_fn, tok, tiny.prompts(), tiny.ppo_params(iterations=2), 64, 0,
              TrainContext(precision="bf16", callbacks=[lambda info: seen.append(attention(info.model.lm))]))
    assert seen == ["eager"] * 4
    assert attention(policy.lm) == attention(policy.lm.get_base_model()) == "sdpa"


def test_a_failing_run_restores_the_attention_too(tok):
    policy = PolicyWithValue(tiny.policy_lm(tok), with_value_head=False)
    reference = tiny.policy_lm(tok).eval().requires_grad_(False)

    def broken(**_):
        raise RuntimeError("reward function failed")

    with pytest.raises(RuntimeError, match="reward function failed"):
        train_grpo(policy, reference, broken, tok, tiny.prompts(), tiny.grpo_params(kl_beta=0.1), 64,
                   0, TrainContext(precision="bf16"))
    assert attention(policy.lm) == attention(reference) == "sdpa"
