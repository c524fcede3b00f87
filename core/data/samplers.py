"""Samplers: seeded shuffling per epoch, distributed sharding, an infinite sampler for
iteration-based training, and aspect-ratio grouped batches."""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def epoch_seed(seed: int, epoch: int) -> int:
    """The one seed of an epoch's shuffle (training, evaluation and tests all use it)."""
    return int(seed) * 100_003 + int(epoch)


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
            g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
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


class TrainBatchSampler(Sampler[list]):
    """The training batches of one epoch: the sampler's order cut into batches, optionally
    grouped by aspect ratio (all landscape or all portrait; each group's leftover partial batch
    comes at the end of the epoch unless `drop_last`). `set_epoch(epoch, skip)` drops the first
    `skip` batches (exact resume mid-epoch). With `tag_epoch` each index is yielded as
    `(epoch, index)` so that `EpochSeeded` can reseed persistent workers per epoch."""

    def __init__(self, sampler: Sampler[int], batch_size: int, drop_last: bool = False,
                 aspect_flags: Sequence[bool] | None = None, tag_epoch: bool = False) -> None:
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), drop_last
        self.flags = list(aspect_flags) if aspect_flags is not None else None
        self.tag_epoch, self.epoch, self.skip = tag_epoch, 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def _batches(self) -> Iterator[list[int]]:
        buckets: dict[bool, list[int]] = {True: [], False: []}
        emitted = 0
        for idx in self.sampler:
            bucket = buckets[self.flags[idx] if self.flags is not None else True]
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()
                emitted += 1
        # Leftover partial batches, larger first, up to the fixed epoch length (every rank and
        # every epoch has the same number of batches; at most one partial group waits a turn).
        for rest in sorted((b for b in buckets.values() if b), key=len, reverse=True):
            if emitted < len(self):
                yield rest
                emitted += 1

    def __iter__(self) -> Iterator[list]:
        epoch = getattr(self.sampler, "epoch", self.epoch)
        skip, self.skip = self.skip, 0
        for n, batch in enumerate(self._batches()):
            if n >= skip:
                yield [(epoch, i) for i in batch] if self.tag_epoch else batch

    def __len__(self) -> int:
        """Batches in a whole epoch: ceil(samples / batch) (floor with drop_last)."""
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


class AspectRatioBatchSampler(TrainBatchSampler):
    """Aspect-ratio grouped batches (a TrainBatchSampler with flags)."""

    def __init__(self, sampler: Sampler[int], aspect_flags: Sequence[bool], batch_size: int, drop_last: bool = False) -> None:
        super().__init__(sampler, batch_size, drop_last, aspect_flags)
