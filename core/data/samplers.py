"""Samplers: seeded shuffling per epoch, distributed sharding, an infinite sampler for
iteration-based training, and aspect-ratio grouped batches."""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def dist_info() -> tuple[int, int]:
    """(rank, world_size) of the default process group, (0, 1) without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class DetSampler(Sampler[int]):
    """Indices of one epoch: shuffled with (seed, epoch) or in order; in distributed runs each
    rank takes every world_size-th index of the (padded) order. The epoch advances by itself
    on each pass unless `set_epoch` is called (the engine may call it)."""

    def __init__(self, size: int, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1,
                 round_up: bool = True) -> None:
        self.size, self.shuffle, self.seed = int(size), shuffle, int(seed)
        self.rank, self.world_size, self.round_up = rank, world_size, round_up
        self.epoch = 0
        if round_up:
            self.num_samples = math.ceil(self.size / world_size)
        else:
            self.num_samples = len(range(rank, self.size, world_size))
        self.total = self.num_samples * world_size if round_up else self.size

    def order(self, epoch: int) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + epoch)
            idx = torch.randperm(self.size, generator=g).tolist()
        else:
            idx = list(range(self.size))
        if self.round_up and self.size:
            idx = (idx * math.ceil(self.total / self.size))[: self.total]
        return idx[self.rank: self.total: self.world_size]

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        self.epoch += 1
        return iter(self.order(epoch))

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)


class InfiniteSampler(DetSampler):
    """Endless stream of indices: epoch after epoch of DetSampler orders."""

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        while True:
            yield from self.order(epoch)
            epoch += 1


class AspectRatioBatchSampler(Sampler[list[int]]):
    """Batches whose images are all landscape (w >= h) or all portrait, so padding wastes
    less. A leftover partial batch of each group is emitted at the end of a finite epoch."""

    def __init__(self, sampler: Sampler[int], aspect_flags: Sequence[bool], batch_size: int, drop_last: bool = False) -> None:
        self.sampler, self.flags, self.batch_size, self.drop_last = sampler, list(aspect_flags), int(batch_size), drop_last

    def __iter__(self) -> Iterator[list[int]]:
        buckets: dict[bool, list[int]] = {True: [], False: []}
        for idx in self.sampler:
            bucket = buckets[self.flags[idx]]
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()
        rest = buckets[True] + buckets[False]
        while rest and not self.drop_last:
            yield rest[: self.batch_size]
            rest = rest[self.batch_size:]

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
