"""`SamplingParams`: how a stage samples responses (generate, evaluate, PPO and GRPO rollouts)."""
from __future__ import annotations

from dataclasses import dataclass

from prefpipe.config.knobs import knob


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = knob(1.0, "sampling temperature")
    top_k: int = knob(0, "top-k sampling (0 = off)")
    top_p: float = knob(1.0, "nucleus sampling mass (1.0 = off)")
    max_new_tokens: int = knob(48, "response length cap; unfinished responses count as malformed")
    batch_size: int = knob(64, "prompts per generation batch (KV cache on)")

    def validate(self) -> str | None:
        if self.temperature <= 0:
            return f"temperature must be > 0, got {self.temperature}"
        if not 0.0 < self.top_p <= 1.0:
            return f"top_p must be in (0, 1], got {self.top_p}"
        return "max_new_tokens must be >= 1" if self.max_new_tokens < 1 else None
