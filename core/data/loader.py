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

    def set_epoch(self, epoch: int) -> None:
        target = self.batch_sampler if hasattr(self.batch_sampler, "set_epoch") else self.sampler
        if hasattr(target, "set_epoch"):
            target.set_epoch(epoch)


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


def build_dataloader(loader_cfg: Mapping[str, Any], *, shuffle: bool, seed: int, distributed: bool = False,
                     infinite: bool = False, dataset: Any = None) -> DetDataLoader:
    """A loader from a preset section (`data.train` etc.): `dataset`, `pipeline`, `batch_size`
    (default 2), `num_workers` (default 2), `persistent_workers` (default true with workers),
    `size_divisor` (default 32), `pad_val` (0), `aspect_ratio_grouping` (false), `drop_last`
    (false). Same seed -> same batches (shuffle order from (seed, epoch); worker streams from
    the loader's seeded generator). `dataset` reuses an already built dataset."""
    from det.core.data.samplers import AspectRatioBatchSampler, DetSampler, InfiniteSampler, dist_info
    from det.core.data.transforms.rng import seed_all

    unknown = set(loader_cfg) - LOADER_KEYS
    if unknown:
        from det.core.config.build import config_path
        from det.core.errors import did_you_mean

        k = sorted(unknown)[0]
        raise ConfigError(f"{config_path(k)}: unknown loader key{did_you_mean(k, LOADER_KEYS)}")
    if dataset is None:
        if "dataset" not in loader_cfg:
            from det.core.config.build import config_path

            raise ConfigError(f"{config_path('dataset')}: missing")
        dataset = build_dataset(loader_cfg)
    batch_size = int(loader_cfg.get("batch_size", 2))
    num_workers = int(loader_cfg.get("num_workers", 2))
    if os.environ.get("DET_NUM_WORKERS") is not None:
        num_workers = int(os.environ["DET_NUM_WORKERS"])  # e.g. 0 for debugging
    rank, world = dist_info() if distributed else (0, 1)
    sampler_cls = InfiniteSampler if infinite else DetSampler
    sampler = sampler_cls(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world,
                          round_up=shuffle or infinite)
    generator = torch.Generator().manual_seed(int(seed) + 1000003 * rank)
    seed_all(int(seed) + rank)  # the main-process stream (num_workers == 0)
    drop_last = bool(loader_cfg.get("drop_last", False))
    collate_fn = partial(collate, size_divisor=int(loader_cfg.get("size_divisor", 32)),
                         pad_val=int(loader_cfg.get("pad_val", 0)))
    kwargs: dict[str, Any] = {"num_workers": num_workers, "collate_fn": collate_fn, "generator": generator,
                              "worker_init_fn": worker_init if num_workers else None,
                              "pin_memory": bool(loader_cfg.get("pin_memory", False))}
    if num_workers:
        kwargs["persistent_workers"] = bool(loader_cfg.get("persistent_workers", True))
        if loader_cfg.get("prefetch_factor") is not None:
            kwargs["prefetch_factor"] = int(loader_cfg["prefetch_factor"])
    if loader_cfg.get("aspect_ratio_grouping", False):
        flags = [d["width"] >= d["height"] for d in _data_list(dataset)]
        batch_sampler = AspectRatioBatchSampler(sampler, flags, batch_size, drop_last)
        loader = DetDataLoader(dataset, batch_sampler=batch_sampler, **kwargs)
    else:
        loader = DetDataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **kwargs)
    return loader


def _data_list(dataset: Any) -> list[dict]:
    """Per-index records (width/height) of a dataset or wrapper, in index order."""
    return [dataset.get_data_info(i) for i in range(len(dataset))]
