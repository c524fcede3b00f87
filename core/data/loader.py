"""Data loaders from preset loader sections: collate with padding to a size divisor, seeded
workers, samplers (shuffle, distributed, infinite, aspect-ratio groups)."""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader

from det.core.errors import ConfigError

LOADER_KEYS = {"dataset", "pipeline", "switch_pipeline", "batch_size", "num_workers", "persistent_workers",
               "size_divisor", "pad_val", "aspect_ratio_grouping", "drop_last", "pin_memory", "prefetch_factor"}


def collate(batch: Sequence[dict], size_divisor: int = 32, pad_val: int = 0) -> dict:
    """Stack `{"inputs": (3, H, W) uint8, "sample": DetSample}` items into `{"inputs": (B, 3,
    Hmax, Wmax) uint8 padded bottom/right to a multiple of size_divisor, "samples": [...]}`;
    each sample gets `batch_input_shape`."""
    if not batch:
        return {"inputs": torch.zeros((0, 3, 0, 0), dtype=torch.uint8), "samples": []}
    if not isinstance(batch[0], Mapping) or "inputs" not in batch[0]:
        return {"samples": list(batch)}  # raw records (no pipeline)
    h = max(int(b["inputs"].shape[1]) for b in batch)
    w = max(int(b["inputs"].shape[2]) for b in batch)
    if size_divisor and size_divisor > 1:
        h, w = math.ceil(h / size_divisor) * size_divisor, math.ceil(w / size_divisor) * size_divisor
    out = torch.full((len(batch), batch[0]["inputs"].shape[0], h, w), int(pad_val), dtype=batch[0]["inputs"].dtype)
    samples = []
    for i, b in enumerate(batch):
        x = b["inputs"]
        out[i, :, : x.shape[1], : x.shape[2]] = x
        b["sample"].batch_input_shape = (h, w)
        samples.append(b["sample"])
    return {"inputs": out, "samples": samples}


def worker_init(worker_id: int) -> None:
    """Seed det's transform stream from torch's per-worker seed (derived from the loader's
    seeded generator), keep OpenCV and torch single-threaded inside workers."""
    import cv2

    from det.core.data.transforms.rng import rng

    cv2.setNumThreads(0)
    torch.set_num_threads(1)
    rng()  # seeds the stream from the worker's seed


class DetDataLoader(DataLoader):
    """A DataLoader with `set_epoch` forwarded to its sampler and the dataset at hand."""

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        target = self.batch_sampler if hasattr(self.batch_sampler, "set_epoch") else self.sampler
        if hasattr(target, "set_epoch"):
            target.set_epoch(epoch, skip_batches) if skip_batches else target.set_epoch(epoch)


def build_dataset(cfg: Mapping[str, Any], pipeline: list | None = None, key: str = "") -> Any:
    """A dataset from a dataset config (`{type: CocoDataset, ...}`) or a whole loader section
    (`{dataset: {...}, pipeline: [...]}`); the pipeline (if any) is attached."""
    from det.core.config.build import at_path, build
    from det.core.data.datasets import DATASETS
    from det.core.errors import DetError

    if isinstance(cfg, Mapping) and "dataset" in cfg and "type" not in cfg:
        pipeline = cfg.get("pipeline", pipeline)
        with at_path(key):
            return build_dataset(cfg["dataset"], pipeline, "dataset")
    cfg = dict(cfg)
    inner_pipeline = cfg.pop("pipeline", None)
    try:
        dataset = build(cfg, DATASETS, key)
    except DetError:
        raise
    except (ValueError, TypeError) as exc:  # constructor argument checks -> the preset path
        from det.core.config.build import config_path

        with at_path(key):
            raise ConfigError(f"{config_path() or 'dataset'}: {exc}") from None
    pipe = inner_pipeline if inner_pipeline is not None else pipeline
    if pipe is not None:
        with at_path(key.rsplit(".", 1)[0] if key == "dataset" else key):
            dataset.set_pipeline(pipe)
    return dataset


def check_loader_keys(loader_cfg: Mapping[str, Any], key: str = "") -> None:
    """Unknown loader keys are an error naming the preset path (with a suggestion)."""
    from det.core.config.build import check_keys

    check_keys(loader_cfg, LOADER_KEYS, what="loader key", where=key or None)


def build_dataloader(loader_cfg: Mapping[str, Any], *, shuffle: bool, seed: int, distributed: bool = False,
                     infinite: bool = False, dataset: Any = None) -> DetDataLoader:
    """A loader from a preset section (`data.train` etc.), building the dataset unless one is
    given; `shuffle` selects the training loader (see `build_loader`), `infinite` an endless
    index stream (iteration-based use outside the Trainer)."""
    check_loader_keys(loader_cfg)
    if dataset is None:
        if "dataset" not in loader_cfg:
            from det.core.config.build import config_path

            raise ConfigError(f"{config_path('dataset')}: missing")
        dataset = build_dataset(loader_cfg)
    from det.core.data.samplers import dist_info

    rank, world = dist_info() if distributed else (0, 1)
    if infinite:
        return _infinite_loader(dataset, loader_cfg, seed, rank, world)
    from det.core.data.transforms.rng import seed_all

    seed_all(int(seed) + rank)  # the main-process stream (num_workers == 0)
    return build_loader(dataset, loader_cfg, train=shuffle, seed=seed, rank=rank, world_size=world)


def loader_options(section: Mapping[str, Any], train: bool, device_type: str = "cpu") -> dict[str, Any]:
    """The documented loader keys of a section with their defaults: batch_size (2 for
    training, 1 otherwise), num_workers (2; the DET_NUM_WORKERS environment variable wins),
    persistent_workers (true with workers), pin_memory (true on CUDA), prefetch_factor,
    drop_last (false), aspect_ratio_grouping (false), size_divisor (32), pad_val (0)."""
    workers = int(os.environ.get("DET_NUM_WORKERS", section.get("num_workers", 2)))
    return {
        "batch_size": int(section.get("batch_size", 2 if train else 1)), "num_workers": workers,
        "persistent_workers": bool(section.get("persistent_workers", True)) and workers > 0,
        "pin_memory": bool(section.get("pin_memory", device_type == "cuda")),
        "prefetch_factor": section.get("prefetch_factor"), "drop_last": bool(section.get("drop_last", False)),
        "aspect_ratio_grouping": bool(section.get("aspect_ratio_grouping", False)),
        "size_divisor": int(section.get("size_divisor", 32)), "pad_val": int(section.get("pad_val", 0)),
    }


def build_loader(dataset: Any, section: Mapping[str, Any] | None, *, train: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1, collate_fn: Any = None, device_type: str = "cpu",
                 **override: Any) -> DetDataLoader:
    """The one loader builder of `det train`, `det test` and the Trainer.

    Training: a seeded per-epoch shuffle (`epoch_seed`) padded and split over ranks, cut into a
    fixed number of batches per epoch (aspect-ratio grouped when asked); call
    `loader.set_epoch(epoch, skip_batches)` before each epoch (exact resume). With workers,
    each worker's random streams are reseeded from (seed, rank, epoch, worker) at the start of
    every epoch, so persistent workers and a resumed run draw the same numbers. Evaluation:
    rank r takes images r, r + W, ... in order. `override` replaces section values
    (batch_size=..., num_workers=...)."""
    from det.core.data.samplers import DetSampler, TrainBatchSampler

    opts = {**loader_options(section or {}, train, device_type), **{k: v for k, v in override.items() if v is not None}}
    workers = int(opts["num_workers"])
    if collate_fn is None:
        collate_fn = partial(collate, size_divisor=opts["size_divisor"], pad_val=opts["pad_val"])
    sampler = DetSampler(len(dataset), shuffle=train, seed=seed, rank=rank, world_size=world_size, round_up=train)
    if train:
        flags = [d["width"] >= d["height"] for d in _data_list(dataset)] if opts["aspect_ratio_grouping"] else None
        batches = TrainBatchSampler(sampler, opts["batch_size"], opts["drop_last"], flags, tag_epoch=workers > 0)
    else:
        batches = torch.utils.data.BatchSampler(sampler, opts["batch_size"], drop_last=False)
    kwargs: dict[str, Any] = {"num_workers": workers, "collate_fn": collate_fn, "pin_memory": opts["pin_memory"],
                              "generator": torch.Generator().manual_seed(int(seed) + 1000003 * rank),
                              "worker_init_fn": worker_init if workers else None}
    if workers:
        kwargs["persistent_workers"] = bool(opts["persistent_workers"])
        if opts["prefetch_factor"] is not None:
            kwargs["prefetch_factor"] = int(opts["prefetch_factor"])
    data = EpochSeeded(dataset, int(seed), rank) if train and workers else dataset
    return DetDataLoader(data, batch_sampler=batches, **kwargs)


class EpochSeeded(torch.utils.data.Dataset):
    """Wraps a training dataset for worker processes: items come as `(epoch, index)`; on the
    first item of a new epoch a worker reseeds det's transform stream, Python's, NumPy's and
    torch's generators from (seed, rank, epoch, worker id)."""

    def __init__(self, dataset: Any, seed: int, rank: int) -> None:
        self.dataset, self.seed, self.rank = dataset, seed, rank
        self._epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key: Any) -> Any:
        epoch, index = key if isinstance(key, tuple) else (None, key)
        info = torch.utils.data.get_worker_info()
        if epoch is not None and info is not None and epoch != self._epoch:
            self._epoch = epoch
            _reseed_worker(self.seed, self.rank, epoch, info.id)
        return self.dataset[index]


def _reseed_worker(seed: int, rank: int, epoch: int, worker: int) -> None:
    import numpy as np

    from det.core.data.transforms.rng import rng, seed_all

    rng()  # the stream's own first-use seeding happens now, not after ours
    value = int(np.random.SeedSequence([seed % 2**32, rank, epoch, worker]).generate_state(1)[0])
    seed_all(value)
    torch.manual_seed(value)


def _infinite_loader(dataset: Any, section: Mapping[str, Any], seed: int, rank: int, world: int) -> DetDataLoader:
    from det.core.data.samplers import InfiniteSampler
    from det.core.data.transforms.rng import seed_all

    opts = loader_options(section, True)
    sampler = InfiniteSampler(len(dataset), shuffle=True, seed=seed, rank=rank, world_size=world)
    seed_all(int(seed) + rank)
    workers = opts["num_workers"]
    return DetDataLoader(dataset, batch_size=opts["batch_size"], sampler=sampler, num_workers=workers,
                         collate_fn=partial(collate, size_divisor=opts["size_divisor"], pad_val=opts["pad_val"]),
                         generator=torch.Generator().manual_seed(int(seed) + 1000003 * rank),
                         worker_init_fn=worker_init if workers else None, pin_memory=opts["pin_memory"],
                         persistent_workers=opts["persistent_workers"])


def _data_list(dataset: Any) -> list[dict]:
    """Per-index records (width/height) of a dataset or wrapper, in index order."""
    return [dataset.get_data_info(i) for i in range(len(dataset))]
