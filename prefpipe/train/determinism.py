"""Deterministic kernels, set the cheap way: same params and seed give the same weights."""
from __future__ import annotations

import torch


def use_deterministic_kernels(warn_only: bool = True) -> None:
    """`torch.use_deterministic_algorithms(True, warn_only=warn_only)` less its import of
    torch._inductor (2.6 s in every process on this CPU) to set a flag of torch.compile's, which
    prefpipe never uses. `warn_only`: an op without a deterministic kernel warns instead of raising."""
    torch._C._set_deterministic_algorithms(True, warn_only=warn_only)
