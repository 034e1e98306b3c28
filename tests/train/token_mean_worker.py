"""Subprocess worker for the reduction-rule test: one backward pass of a token-mean loss under
`Runtime.global_mean`, with processes holding different token counts; saves the gradient.

python tests/train/token_mean_worker.py OUT   (1 process, or under `accelerate launch`)"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from prefpipe.losses import masked_mean  # noqa: E402
from prefpipe.train.distributed import Runtime  # noqa: E402

LENGTHS = [6, 1, 3, 2, 5]  # response tokens per row: rank 0 holds 10, rank 1 holds 7 (2 processes)


def main() -> None:
    runtime = Runtime()
    torch.manual_seed(0)
    values = torch.randn(len(LENGTHS), max(LENGTHS))
    mask = torch.tensor([[1.0] * n + [0.0] * (max(LENGTHS) - n) for n in LENGTHS])
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.ones_(model.weight)
    trained, _ = runtime.prepare(model, torch.optim.SGD(model.parameters(), lr=1.0))
    rows = runtime.shard(list(range(len(LENGTHS))))
    per_token = trained(values[rows].unsqueeze(-1)).squeeze(-1) ** 2  # w²·v², d/dw = 2·v² at w = 1
    loss = runtime.global_mean(masked_mean(per_token, mask[rows]), mask[rows].sum())
    runtime.accelerator.backward(loss)
    logged = runtime.mean(loss.item())
    if runtime.is_main:
        torch.save({"grad": runtime.unwrap(trained).weight.grad.item(), "loss": logged,
                    "world_size": runtime.world_size,
                    "expected_grad": ((2 * values ** 2 * mask).sum() / mask.sum()).item(),
                    "expected_loss": masked_mean(values ** 2, mask).item()}, sys.argv[1])


if __name__ == "__main__":
    main()
