"""The training and validation samplers the Trainer uses: a seeded per-epoch shuffle split
across ranks, with a start offset so that a resumed run continues at the exact sample."""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    """Indices of one epoch for one rank.

    Shuffled with a generator seeded by (seed, epoch), so an epoch's order depends on nothing
    else; padded by repetition to a multiple of `world_size` and split by stride, as
    torch's DistributedSampler. `skip` drops the first indices of this rank (resume).
    """

    def __init__(self, size: int, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.num_samples = math.ceil(size / world_size)
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            idx = torch.randperm(self.size, generator=g).tolist()
        else:
            idx = list(range(self.size))
        total = self.num_samples * self.world_size
        if total > len(idx):
            idx += (idx * math.ceil(total / max(1, len(idx))))[: total - len(idx)]
        return idx[self.rank:total:self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


class ShardSampler(Sampler[int]):
    """Evaluation: rank r gets indices r, r + W, r + 2W, ... (no padding, no duplicates)."""

    def __init__(self, size: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, size, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
