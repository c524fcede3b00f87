"""Pack: the last step of every pipeline, from the record dict to tensors and a DetSample."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from det.core.structures.sample import DetSample, Instances

_DEFAULT_META = ("homography_matrix", "width", "height")


class Pack:
    """-> {"inputs": uint8 tensor (3, H, W) BGR, "sample": DetSample} with gt Instances (bboxes
    float32 xyxy in input coordinates, labels int64, ignore bool, masks (N, H, W) bool when
    loaded), `gt_sem_seg` (H, W) uint8 when a semantic map was loaded. `meta_keys` are extra record keys copied into `sample.meta`."""

    def __init__(self, meta_keys: Sequence[str] = ()) -> None:
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        img = results["img"]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        n = 0 if results.get("gt_bboxes") is None else len(results["gt_bboxes"])
        bboxes = results.get("gt_bboxes")
        gt = Instances(
            bboxes=torch.from_numpy(np.ascontiguousarray(bboxes, np.float32)).reshape(-1, 4) if bboxes is not None else torch.zeros((0, 4)),
            labels=torch.from_numpy(np.ascontiguousarray(results.get("gt_labels", np.zeros(n, np.int64)), np.int64)).reshape(-1),
            ignore=torch.from_numpy(np.ascontiguousarray(results.get("gt_ignore", np.zeros(n, bool)), bool)).reshape(-1),
            masks=results["gt_masks"].to_tensor() if results.get("gt_masks") is not None else None,
        )
        h, w = img.shape[:2]
        meta = {k: results[k] for k in (*_DEFAULT_META, *self.meta_keys) if k in results}
        sample = DetSample(
            img_path=str(results.get("img_path", "")),
            img_id=int(results.get("img_id", -1)),
            ori_shape=tuple(results.get("ori_shape", (h, w))),
            img_shape=tuple(results.get("img_shape", (h, w))),
            pad_shape=tuple(results.get("pad_shape", (h, w))),
            scale_factor=tuple(float(s) for s in results.get("scale_factor", (1.0, 1.0))),
            flip_direction=results.get("flip_direction"),
            gt=gt,
            gt_sem_seg=None if results.get("gt_seg_map") is None else torch.from_numpy(np.ascontiguousarray(results["gt_seg_map"])),
            meta=meta,
        )
        return {"inputs": inputs, "sample": sample}

    def __repr__(self) -> str:
        return f"Pack(meta_keys={self.meta_keys!r})"


PackDetInputs = Pack
