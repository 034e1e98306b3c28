"""Runtime.shard and global_scale, with rank and world size faked on a subclass (no processes)."""
from __future__ import annotations

import pytest

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
