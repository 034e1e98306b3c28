"""What `runtime.precision` means on this machine: 'auto' becomes bf16 autocast where the hardware
computes bf16 natively, else fp32; 'fp32' and 'bf16' stay as they are.

Native bf16: a CUDA device that supports it (`torch.cuda.is_bf16_supported()`: Ampere and later),
or a CPU with AVX512-BF16 or AMX (the `avx512_bf16` / `amx_bf16` flags of /proc/cpuinfo; elsewhere
torch's own CPU capability, when it names either). Anything else emulates bf16 slower than fp32.
Native is not always faster: on the 2-core AVX512-BF16 machine (no AMX) of bench/training_floor.py
the embedded GPT-2's (128-wide) steps run at 0.75-0.85x their fp32 speed in bf16 (its matmuls
gain nothing and the casts cost); `runtime.precision: fp32` is the faster setting there.
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
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


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
        have = [f for f in CPU_BF16_FLAGS if f in (cpu_flags() if flags is None else flags)]
        if have:
            return True, f"CPU has {' and '.join(have)}"
        return False, f"CPU has neither {' nor '.join(CPU_BF16_FLAGS)}"
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
