"""Dataset wrappers: Repeat, Concat and ClassBalanced (repeat-factor sampling, LVIS-style)."""
from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset

from det.core.errors import DataError


def _build(cfg: Any, key: str) -> Any:
    if isinstance(cfg, Dataset):
        return cfg
    from det.core.config.build import build
    from det.core.data.datasets import DATASETS

    return build(cfg, DATASETS, key)


class _Wrapper(Dataset):
    """Shared behaviour: classes/palette/cat_ids/ann_file of the (first) inner dataset,
    `set_pipeline` forwarded."""

    datasets: list

    @property
    def classes(self) -> tuple:
        return self.datasets[0].classes

    @property
    def palette(self) -> list:
        return self.datasets[0].palette

    @property
    def cat_ids(self) -> list[int]:
        return self.datasets[0].cat_ids

    @property
    def ann_file(self) -> str | None:
        return getattr(self.datasets[0], "ann_file", None)

    @property
    def test_mode(self) -> bool:
        return bool(getattr(self.datasets[0], "test_mode", False))

    def set_pipeline(self, cfgs: list | None) -> None:
        for d in self.datasets:
            d.set_pipeline(cfgs)

    def metainfo(self) -> dict:
        return self.datasets[0].metainfo()


class RepeatDataset(_Wrapper):
    """`dataset` repeated `times` times (shorter epochs for small datasets)."""

    def __init__(self, dataset: Any, times: int) -> None:
        if int(times) < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        self.dataset = _build(dataset, "dataset")
        self.datasets = [self.dataset]
        self.times = int(times)

    def __len__(self) -> int:
        return self.times * len(self.dataset)

    def _inner(self, idx: int) -> int:
        if not -len(self) <= idx < len(self):
            raise IndexError(idx)
        return idx % len(self.dataset)

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[self._inner(idx)]

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(self._inner(idx))

    def get_cat_ids(self, idx: int) -> set[int]:
        return self.dataset.get_cat_ids(self._inner(idx))

    @property
    def data_list(self) -> list[dict]:
        return self.dataset.data_list

    def coco_gt(self) -> dict:
        return self.dataset.coco_gt()


class ConcatDataset(_Wrapper):
    """Datasets one after another; all must have the same classes. Image ids are renumbered
    in `coco_gt()` and in the records so they stay unique."""

    def __init__(self, datasets: Sequence[Any]) -> None:
        if not datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        self.datasets = [_build(d, f"datasets.{i}") for i, d in enumerate(datasets)]
        first = tuple(self.datasets[0].classes)
        for i, d in enumerate(self.datasets[1:], 1):
            if tuple(d.classes) != first:
                raise DataError(f"ConcatDataset: datasets.{i} has classes {tuple(d.classes)}, datasets.0 has {first}")
        self.cumulative = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative.append(total)
        # image ids of each part -> ids unique over the concatenation (1-based, in order)
        self.id_maps: list[dict[int, int]] = []
        next_id = 1
        for d in self.datasets:
            m = {}
            for info in d.data_list:
                if int(info["img_id"]) not in m:
                    m[int(info["img_id"])] = next_id
                    next_id += 1
            self.id_maps.append(m)

    def __len__(self) -> int:
        return self.cumulative[-1]

    def _locate(self, idx: int) -> tuple[int, int]:
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(idx)
        k = bisect.bisect_right(self.cumulative, idx)
        return k, idx - (self.cumulative[k - 1] if k else 0)

    def __getitem__(self, idx: int) -> Any:
        k, j = self._locate(idx)
        out = self.datasets[k][j]
        sample = out.get("sample") if isinstance(out, dict) else None
        if sample is not None:
            sample.img_id = self.id_maps[k].get(int(sample.img_id), sample.img_id)
        elif isinstance(out, dict) and "img_id" in out:
            out["img_id"] = self.id_maps[k].get(int(out["img_id"]), out["img_id"])
        return out

    def get_data_info(self, idx: int) -> dict:
        k, j = self._locate(idx)
        info = self.datasets[k].get_data_info(j)
        info["img_id"] = self.id_maps[k].get(int(info["img_id"]), info["img_id"])
        return info

    def get_cat_ids(self, idx: int) -> set[int]:
        k, j = self._locate(idx)
        return self.datasets[k].get_cat_ids(j)

    @property
    def data_list(self) -> list[dict]:
        out = []
        for d, m in zip(self.datasets, self.id_maps):
            out.extend({**info, "img_id": m[int(info["img_id"])]} for info in d.data_list)
        return out

    def coco_gt(self) -> dict:
        images, annotations = [], []
        ann_id = 0
        for d, id_map in zip(self.datasets, self.id_maps):
            gt = d.coco_gt()
            for img in gt["images"]:
                images.append({**img, "id": id_map[int(img["id"])]})
            for ann in gt["annotations"]:
                ann_id += 1
                annotations.append({**ann, "id": ann_id, "image_id": id_map[int(ann["image_id"])]})
        return {"images": images, "annotations": annotations, "categories": self.datasets[0].coco_gt()["categories"]}


class ClassBalancedDataset(_Wrapper):
    """Repeat images of rare classes (repeat-factor sampling): with f(c) the fraction of
    images containing class c, r(c) = max(1, sqrt(oversample_thr / f(c))); an image is
    repeated ceil(max over its classes of r(c)) times."""

    def __init__(self, dataset: Any, oversample_thr: float) -> None:
        self.dataset = _build(dataset, "dataset")
        self.datasets = [self.dataset]
        self.oversample_thr = float(oversample_thr)
        self.repeat_factors = self._repeat_factors()
        self.indices = [i for i, r in enumerate(self.repeat_factors) for _ in range(math.ceil(r))]

    def _repeat_factors(self) -> list[float]:
        n = len(self.dataset)
        cats = [self.dataset.get_cat_ids(i) for i in range(n)]
        counts: dict[int, int] = {}
        for cs in cats:
            for c in cs:
                counts[c] = counts.get(c, 0) + 1
        cat_factor = {c: max(1.0, math.sqrt(self.oversample_thr / (k / n))) for c, k in counts.items()}
        return [max((cat_factor[c] for c in cs), default=1.0) for cs in cats]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[self.indices[idx]]

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(self.indices[idx])

    def get_cat_ids(self, idx: int) -> set[int]:
        return self.dataset.get_cat_ids(self.indices[idx])

    @property
    def data_list(self) -> list[dict]:
        return self.dataset.data_list

    def coco_gt(self) -> dict:
        return self.dataset.coco_gt()
