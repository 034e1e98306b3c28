"""What `runtime.precision` means on this machine: 'auto' becomes bf16 autocast where the hardware
has bf16 matrix units that make it faster than fp32, else fp32; 'fp32' and 'bf16' stay as they are.

bf16 matrix units: a CUDA device that supports bf16 (`torch.cuda.is_bf16_supported()`: Ampere and
later), or a CPU with AMX (the `amx_bf16` flag of /proc/cpuinfo; elsewhere torch's own CPU
capability, when it names it). AVX512-BF16 alone is not enough: on the 2-core AVX512-BF16 machine
(no AMX) of bench/training_floor.py, bf16 autocast ran the embedded GPT-2's (128-wide) steps at
0.75-0.85x their fp32 speed and 512- and 1024-wide DPO steps at 0.66x (the casts cost more than its
bf16 dot products gain), so 'auto' picks fp32 there and `runtime.precision: bf16` still asks for it.
"""
from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

log = logging.getLogger("prefpipe")
Precision = Literal["fp32", "bf16"]
CPU_BF16_FLAGS = ("amx_bf16",)  # avx512_bf16 alone ran slower than fp32 (docstring)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags: /proc/cpuinfo's, else words of torch's CPU capability ('AVX512')."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    import torch

    return frozenset(torch.backends.cpu.get_cpu_capability().lower().replace(" ", "_").split())


def cuda_bf16_supported() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def native_bf16(device_type: str, flags: frozenset[str] | None = None,
                cuda_bf16: bool | None = None) -> tuple[bool, str]:
    """(whether `device_type` computes bf16 natively, why). `flags` / `cuda_bf16` stand in for this
    machine's (tests)."""
    if device_type == "cuda":
        supported = cuda_bf16_supported() if cuda_bf16 is None else cuda_bf16
        return supported, f"CUDA device {'supports' if supported else 'lacks'} bf16"
    if device_type == "cpu":
        flags = cpu_flags() if flags is None else flags
        if any(f in flags for f in CPU_BF16_FLAGS):
            return True, f"CPU has {' and '.join(f for f in CPU_BF16_FLAGS if f in flags)}"
        if "avx512_bf16" in flags:
            return False, "CPU has avx512_bf16 but no amx_bf16: bf16 autocast ran slower than fp32 there"
        return False, f"CPU has no {' or '.join(CPU_BF16_FLAGS)}"
    return False, f"device {device_type!r} is not one bf16 autocast is picked for"


def resolve_precision(requested: str, device_type: str, flags: frozenset[str] | None = None,
                      cuda_bf16: bool | None = None) -> Precision:
    """runtime.precision -> 'fp32' | 'bf16' on `device_type` ('cpu', 'cuda'); 'auto' is logged with
    the reason for the choice."""
    if requested in ("fp32", "bf16"):
        return requested
    if requested != "auto":
        raise ValueError(f"runtime.precision must be fp32, bf16 or auto, got {requested!r}")
    native, why = native_bf16(device_type, flags, cuda_bf16)
    chosen: Precision = "bf16" if native else "fp32"
    log.info("runtime.precision auto -> %s (%s)", chosen, why)
    return chosen


@contextlib.contextmanager
def attention_for(model, precision: str, device_type: str) -> Iterator[None]:
    """Within the block, a model under bf16 autocast on a CPU computes attention as plain matmuls
    ('eager') instead of torch's SDPA kernel, whose CPU backward in bf16 is ~5x slower than in fp32
    (torch 2.13: an RL training step of the embedded GPT-2 takes 1.35x less CPU under bf16 with eager
    than with SDPA; forward passes alone are as fast either way). The model's own implementation
    is restored on leaving (and never saved: transformers keeps it out of config.json). fp32 runs
    and CUDA keep SDPA, so their numbers do not move."""
    config = getattr(model, "config", None)
    own = getattr(config, "_attn_implementation", None)
    if precision != "bf16" or device_type != "cpu" or own != "sdpa" \
            or not hasattr(model, "set_attn_implementation"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(own)
