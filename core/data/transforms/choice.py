"""Random choices between transforms: RandomChoice (one of several sub-pipelines) and
RandomChoiceResize (one of several scales), as the DETR family's multi-scale recipes use them."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from det.core.data.transforms.base import Transform, as_pair
from det.core.data.transforms.geometric import _interp, rescale_size, resize_to
from det.core.data.transforms.rng import rng


def _probabilities(prob: Sequence[float] | None, n: int) -> np.ndarray:
    if prob is None:
        return np.full(n, 1.0 / n)
    p = np.asarray(prob, np.float64)
    if p.shape != (n,) or (p < 0).any() or abs(p.sum() - 1) > 1e-6:
        raise ValueError(f"prob must be {n} non-negative numbers summing to 1, got {list(prob)!r}")
    return p


class RandomChoice(Transform):
    """Apply one of `transforms`, picked with probabilities `prob` (uniform by default). Each
    entry is a transform config or a list of them (a sub-pipeline run in order)."""

    def __init__(self, transforms: Sequence[Any], prob: Sequence[float] | None = None) -> None:
        from det.core.config.build import at_path
        from det.core.data.transforms import build_pipeline

        if not isinstance(transforms, Sequence) or isinstance(transforms, str) or not transforms:
            raise ValueError("transforms must be a non-empty list of transforms or of transform lists")
        branches = []
        with at_path("transforms"):
            for i, t in enumerate(transforms):
                branches.append(build_pipeline(list(t) if isinstance(t, (list, tuple)) else [t], str(i)))
        self.transforms = branches
        self.prob = None if prob is None else list(prob)
        self._p = _probabilities(prob, len(branches))

    def transform(self, results: dict) -> dict | None:
        return self.transforms[int(rng().choice(len(self.transforms), p=self._p))](results)

    def bind_dataset(self, dataset: Any) -> None:
        for branch in self.transforms:
            branch.bind_dataset(dataset)


class RandomChoiceResize(Transform):
    """Resize to one of `scales` (each (w, h), or a number for a square), picked uniformly;
    with `keep_ratio` the image fits the chosen scale as Resize does (long edge <= its larger
    number, short edge <= its smaller one)."""

    def __init__(self, scales: Sequence[Any], keep_ratio: bool = True, clip_object_border: bool = True,
                 interpolation: str = "bilinear") -> None:
        if not isinstance(scales, Sequence) or isinstance(scales, str) or not scales:
            raise ValueError("scales must be a non-empty list of (w, h) pairs")
        self.scales = [as_pair(s, "scales") for s in scales]
        self.keep_ratio = keep_ratio
        self.clip_object_border = clip_object_border
        self.interpolation = interpolation
        self._flag = _interp(interpolation)

    def transform(self, results: dict) -> dict:
        scale = self.scales[int(rng().integers(len(self.scales)))]
        h, w = results["img"].shape[:2]
        new_w, new_h = rescale_size(w, h, scale) if self.keep_ratio else scale
        return resize_to(results, new_w, new_h, self._flag, self.clip_object_border)

