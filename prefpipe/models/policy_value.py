"""The RL policy: a causal LM plus a value head on its backbone, optionally LoRA-adapted.

With LoRA the frozen reference is the same network with its adapters disabled, and the value head
reads the shared backbone: PPO holds one copy of the model instead of the seed's four.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn


class PolicyWithValue(nn.Module):
    """`forward` returns (logits (B, T, V), values (B, T)); values read the last hidden state."""

    def __init__(self, lm: nn.Module, with_value_head: bool = True):
        super().__init__()
        self.lm = lm
        hidden = lm.config.get_text_config().hidden_size
        self.value_head = nn.Linear(hidden, 1) if with_value_head else None
        if self.value_head is not None:
            nn.init.normal_(self.value_head.weight, std=1.0 / (hidden + 1) ** 0.5)
            nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask,
                      output_hidden_states=self.value_head is not None)
        if self.value_head is None:
            return out.logits, None
        return out.logits, self.value_head(out.hidden_states[-1]).squeeze(-1).float()

    @property
    def uses_lora(self) -> bool:
        return hasattr(self.lm, "disable_adapter")

    def reference_mode(self):
        """Context in which `lm` is the frozen reference (LoRA adapters off)."""
        return self.lm.disable_adapter() if self.uses_lora else contextlib.nullcontext()

    def generator(self):
        """The module whose `.generate` samples from the current policy."""
        return self.lm


def apply_lora(lm: nn.Module, lora_params) -> nn.Module:
    """Wrap `lm` with LoRA adapters (peft); only the adapters stay trainable."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora_params.rank, lora_alpha=lora_params.alpha,
                        lora_dropout=lora_params.dropout,
                        target_modules=list(lora_params.target_modules) or None,
                        task_type="CAUSAL_LM")
    return get_peft_model(lm, config)


def merged_lm(lm: nn.Module) -> nn.Module:
    """A plain transformers model to save: LoRA adapters merged into the weights."""
    return lm.merge_and_unload() if hasattr(lm, "merge_and_unload") else lm
