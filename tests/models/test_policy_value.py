"""PolicyWithValue on a tiny random GPT-2: shapes, value head, LoRA reference mode and merging."""
from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from prefpipe.config.schema import LoRAParams
from prefpipe.models.policy_value import PolicyWithValue, apply_lora, merged_lm

VOCAB = 64


def tiny_lm(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=32,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(config).eval()


def inputs():
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (3, 7), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # a right-padded row
    return ids, mask


def perturb_lora_b(model) -> int:
    """peft starts lora_B at zero (adapter = identity); give it random weights so the adapter acts."""
    generator = torch.Generator().manual_seed(2)
    touched = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
                touched += 1
    return touched


def test_forward_shapes_and_values_from_last_hidden_state():
    lm = tiny_lm()
    policy = PolicyWithValue(lm).eval()
    ids, mask = inputs()
    with torch.no_grad():
        logits, values = policy(ids, mask)
        out = lm(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert logits.shape == (3, 7, VOCAB)
    assert values.shape == (3, 7)
    assert values.dtype == torch.float32
    assert torch.equal(logits, out.logits)
    hidden = out.hidden_states[-1].double()
    expected = hidden @ policy.value_head.weight.double().T + policy.value_head.bias.double()
    torch.testing.assert_close(values.double(), expected.squeeze(-1), rtol=0, atol=1e-5)
    assert policy.value_head.bias.abs().sum().item() == 0.0  # bias starts at zero
    assert values.std().item() > 0


def test_without_value_head_values_are_none():
    lm = tiny_lm()
    policy = PolicyWithValue(lm, with_value_head=False).eval()
    assert policy.value_head is None
    ids, mask = inputs()
    with torch.no_grad():
        logits, values = policy(ids, mask)
        expected = lm(input_ids=ids, attention_mask=mask).logits
    assert values is None
    assert torch.equal(logits, expected)
    assert not policy.uses_lora


def test_reference_mode_without_lora_is_a_no_op():
    policy = PolicyWithValue(tiny_lm()).eval()
    ids, mask = inputs()
    with torch.no_grad():
        normal = policy(ids, mask)[0]
        with policy.reference_mode():
            reference = policy(ids, mask)[0]
    assert torch.equal(normal, reference)
    assert policy.generator() is policy.lm
    assert merged_lm(policy.lm) is policy.lm


@pytest.fixture
def lora_setup():
    lm = tiny_lm()
    ids, mask = inputs()
    with torch.no_grad():
        base_logits = lm(input_ids=ids, attention_mask=mask).logits.clone()
    policy = PolicyWithValue(apply_lora(lm, LoRAParams(rank=4))).eval()
    return policy, ids, mask, base_logits


def test_lora_starts_as_identity(lora_setup):
    policy, ids, mask, base_logits = lora_setup
    assert policy.uses_lora
    with torch.no_grad():
        logits, _ = policy(ids, mask)
    torch.testing.assert_close(logits, base_logits, rtol=0, atol=1e-6)


def test_reference_mode_gives_base_logits_and_normal_mode_differs(lora_setup):
    policy, ids, mask, base_logits = lora_setup
    assert perturb_lora_b(policy.lm) > 0
    with torch.no_grad():
        adapted, adapted_values = policy(ids, mask)
        with policy.reference_mode():
            reference, _ = policy(ids, mask)
        after, after_values = policy(ids, mask)
    assert torch.equal(reference, base_logits)
    assert (adapted - base_logits).abs().max().item() > 1e-2
    assert torch.equal(after, adapted)  # adapters are back on after the context
    assert torch.equal(after_values, adapted_values)


def test_merged_lm_matches_adapted_model(lora_setup):
    policy, ids, mask, base_logits = lora_setup
    perturb_lora_b(policy.lm)
    with torch.no_grad():
        adapted = policy(ids, mask)[0].clone()
    merged = merged_lm(policy.lm)
    assert isinstance(merged, GPT2LMHeadModel)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        merged_logits = merged(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(merged_logits, adapted, rtol=0, atol=1e-5)
    assert (merged_logits - base_logits).abs().max().item() > 1e-2


def test_only_lora_and_value_head_are_trainable(lora_setup):
    policy = lora_setup[0]
    trainable = [name for name, p in policy.named_parameters() if p.requires_grad]
    frozen = [name for name, p in policy.named_parameters() if not p.requires_grad]
    assert trainable
    assert all("lora_" in name or name.startswith("value_head.") for name in trainable)
    assert {"value_head.weight", "value_head.bias"} <= set(trainable)
    assert any("lora_A" in name for name in trainable) and any("lora_B" in name for name in trainable)
    assert not any("lora_" in name for name in frozen)
    assert any("wte" in name for name in frozen)


def test_lora_gradients_reach_adapters_and_value_head_only(lora_setup):
    policy, ids, mask, _ = lora_setup
    perturb_lora_b(policy.lm)
    policy.train()
    logits, values = policy(ids, mask)
    (logits.float().logsumexp(-1).mean() + values.mean()).backward()
    with_grad = {name for name, p in policy.named_parameters()
                 if p.grad is not None and p.grad.abs().sum() > 0}
    assert "value_head.weight" in with_grad
    assert any("lora_A" in name for name in with_grad)
    assert all("lora_" in name or name.startswith("value_head.") for name in with_grad)
