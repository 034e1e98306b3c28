"""Runtime.shard and the reduction rule (global_scale, global_mean), with rank and world size faked
on a subclass (no processes)."""
from __future__ import annotations

import pytest
import torch

from prefpipe.losses import masked_mean
from prefpipe.train.distributed import Runtime


class FakeRank(Runtime):
    """A Runtime that claims to be process `rank` of `world_size` (the accelerator stays single)."""

    def __init__(self, rank: int, world_size: int):
        super().__init__()
        self._rank, self._world = rank, world_size

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world


def test_single_process_runtime():
    runtime = Runtime()
    assert (runtime.rank, runtime.world_size, runtime.is_main) == (0, 1, True)
    items = list("abcdefg")
    assert runtime.shard(items) == items
    assert runtime.global_scale(8) == pytest.approx(1 / 8)
    assert runtime.mean(2.5) == 2.5


@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("length", [0, 1, 2, 5, 6, 7, 10, 13, 64])
def test_shards_partition_in_order_and_balance(world, length):
    items = [f"x{i}" for i in range(length)]
    shards = [FakeRank(rank, world).shard(items) for rank in range(world)]
    assert [x for shard in shards for x in shard] == items  # concatenated in rank order
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the extra items go to the lowest ranks
    base, extra = divmod(length, world)
    assert sizes == [base + 1] * extra + [base] * (world - extra)


def test_shard_hand_example():
    items = list(range(10))
    assert [FakeRank(r, 4).shard(items) for r in range(4)] == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert [FakeRank(r, 3).shard(list("ab")) for r in range(3)] == [["a"], ["b"], []]


def test_shard_is_contiguous_slice_and_copies():
    items = list(range(9))
    shard = FakeRank(1, 2).shard(items)
    assert shard == [5, 6, 7, 8]
    shard.append(99)
    assert items == list(range(9))


@pytest.mark.parametrize(("world", "count"), [(1, 10), (2, 10), (4, 3), (3, 7.5), (8, 1)])
def test_global_scale_is_world_over_count(world, count):
    runtime = FakeRank(0, world)
    assert runtime.global_scale(count) == pytest.approx(world / count, rel=1e-15)


def test_global_scale_makes_ddp_average_the_global_mean():
    """Local sums scaled by global_scale, averaged over ranks (what DDP does), give the global mean."""
    values = [0.5, 1.0, 4.0, -2.0, 3.5, 7.0, 0.25]
    world = 3
    per_rank = []
    for rank in range(world):
        runtime = FakeRank(rank, world)
        per_rank.append(sum(runtime.shard(values)) * runtime.global_scale(len(values)))
    assert sum(per_rank) / world == pytest.approx(sum(values) / len(values), rel=1e-14)


def test_global_scale_guards_zero_count():
    assert FakeRank(0, 2).global_scale(0) == 2.0


class FakeWorld(FakeRank):
    """FakeRank whose `sum` over processes returns a given total (what the all-reduce would give)."""

    def __init__(self, rank: int, world_size: int, total: torch.Tensor):
        super().__init__(rank, world_size)
        self.total = total

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.total.to(tensor.dtype)


def test_global_mean_is_bitwise_identity_with_one_process():
    """One process: the rule must not move a single bit of the loss or its gradient."""
    torch.manual_seed(0)
    values = torch.randn(7, 5, requires_grad=True)
    mask = (torch.rand(7, 5) > 0.4).float()
    plain = masked_mean(values, mask)
    (plain_grad,) = torch.autograd.grad(plain, values)
    ruled = Runtime().global_mean(masked_mean(values, mask), mask.sum())
    (ruled_grad,) = torch.autograd.grad(ruled, values)
    assert ruled.item() == plain.item()
    assert torch.equal(ruled_grad, plain_grad)


def test_global_mean_shares_average_to_the_global_token_mean():
    """Per-process token means, weighted by the rule and averaged over ranks (DDP), give the mean
    over every token of the global batch, not the mean of the per-process means."""
    values = torch.tensor([[1.0, 2.0, 3.0], [10.0, 0.0, 0.0], [4.0, 4.0, 0.0], [7.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    world, total = 2, mask.sum()
    shares, local_means = [], []
    for rank in range(world):
        runtime = FakeWorld(rank, world, total)
        rows = runtime.shard(list(range(4)))
        local_mean = masked_mean(values[rows], mask[rows])
        local_means.append(local_mean)
        shares.append(runtime.global_mean(local_mean, mask[rows].sum()))
    global_mean = masked_mean(values, mask)  # (6 + 10 + 8 + 7) / 7
    assert (sum(shares) / world).item() == pytest.approx(global_mean.item(), rel=1e-6)
    assert (sum(local_means) / world).item() != pytest.approx(global_mean.item(), rel=1e-3)


def test_global_mean_of_an_empty_world_is_zero_not_nan():
    runtime = FakeWorld(0, 2, torch.tensor(0.0))
    assert runtime.global_mean(torch.tensor(0.0), torch.tensor(0.0)).item() == 0.0
