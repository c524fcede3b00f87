"""CocoPanopticMetric: PQ/SQ/RQ of a model's `PanopticPrediction`s on a CocoPanopticDataset
(MMDetection's evaluator name), and the COCO panoptic submission files with `outfile_prefix`.

    evaluation: {type: CocoPanopticMetric, classwise: false, outfile_prefix: work_dirs/pan/val}

Predictions must be in original-image pixels. Each image is scored when it arrives (only the
per-category sums are kept), so memory does not grow with the dataset; with `outfile_prefix`
the PNGs go into `{prefix}.panoptic/` at once and `{prefix}.panoptic.json` at the end.
`format_only` writes the files without scoring (test-dev, where no ground truth exists).
`ann_file` (+ `seg_prefix`, default the JSON path without .json) take the ground truth from
files instead of the dataset, as MMDetection's CocoPanopticMetric does.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2

from det.core import dist
from det.core.errors import ConfigError, DataError
from det.core.evaluation.panoptic import new_stats, pq_image, pq_summary


class CocoPanopticMetric:
    """PQ, SQ, RQ overall, for things (`_th`) and stuff (`_st`), per class with `classwise`."""

    def __init__(self, dataset: Any = None, classwise: bool = False, format_only: bool = False,
                 outfile_prefix: str | None = None, force: bool = False, ann_file: str | None = None,
                 seg_prefix: str | None = None) -> None:
        if format_only and not outfile_prefix:
            raise ConfigError("evaluation.outfile_prefix: format_only needs a prefix to write the submission to")
        self.dataset, self.classwise, self.format_only = dataset, bool(classwise), bool(format_only)
        self.outfile_prefix, self.force = outfile_prefix, bool(force)
        self.ann_file, self.seg_prefix = ann_file, seg_prefix  # MMDetection's keys: ground truth from these files
        self._index: dict[int, int] | None = None
        self._file_gt: dict[int, dict] | None = None
        self.reset()

    def reset(self) -> None:
        self._stats = new_stats()
        self._written: list[dict] = []

    def _record(self, img_id: int) -> dict:
        if self._index is None:
            self._index = {int(d["img_id"]): i for i, d in enumerate(self.dataset.data_list)}
        return self.dataset.data_list[self._index[int(img_id)]]

    def process(self, samples: Sequence[Any], preds: Sequence[Any]) -> None:
        from det.core.data.panoptic_io import read_segment_ids

        cat_ids = list(self.dataset.cat_ids)
        for sample, pred in zip(samples, preds):
            rec = self._record(sample.img_id)
            if self.outfile_prefix:
                self._write(rec, pred, cat_ids)
            if self.format_only:
                continue
            png, gt_segs, void_ids = self._ground_truth(rec)
            gt_ids = read_segment_ids(png)
            for void_id in void_ids:
                gt_ids[gt_ids == void_id] = 0
            pred_segs = {int(s["id"]): {"category_id": cat_ids[int(s["label"])]} for s in pred.segments}
            pred_ids = pred.seg_map.copy()
            pred_ids[~_isin(pred_ids, pred_segs)] = 0
            pq_image(gt_ids, gt_segs, pred_ids, pred_segs, self._stats, where=f"{rec['img_path']}: ")

    def _ground_truth(self, rec: dict) -> tuple[str, dict[int, dict], list[int]]:
        """(segment PNG, {id: {category_id, iscrowd}}, ids to treat as VOID) of an image: from the
        dataset's record, or from `ann_file` + `seg_prefix` when given."""
        if not self.ann_file:
            segs = {s["id"]: {"category_id": s["category_id"], "iscrowd": s["iscrowd"]} for s in rec["segments_info"]}
            return rec["seg_map_path"], segs, list(rec.get("void_segment_ids", []))
        if self._file_gt is None:
            self._file_gt = _load_file_gt(self.ann_file)
        ann = self._file_gt.get(int(rec["img_id"]))
        if ann is None:
            raise DataError(f"{self.ann_file}: no annotation for image_id {rec['img_id']}")
        prefix = self.seg_prefix or str(Path(self.ann_file).with_suffix(""))
        keep = set(self.dataset.cat_ids)
        segs = {int(s["id"]): {"category_id": int(s["category_id"]), "iscrowd": int(bool(s.get("iscrowd", 0)))}
                for s in ann["segments_info"]}
        void = [i for i, s in segs.items() if s["category_id"] not in keep]
        return str(Path(prefix) / ann["file_name"]), {i: s for i, s in segs.items() if i not in void}, void

    def _write(self, rec: dict, pred: Any, cat_ids: list[int]) -> None:
        from det.core.data.panoptic_io import png_name, write_png
        from det.core.errors import DetError

        target = Path(f"{self.outfile_prefix}.panoptic") / png_name(rec["file_name"])
        if target.exists() and not self.force:
            raise DetError(f"{target}: already exists (set evaluation.force: true or choose another outfile_prefix)")
        rgb, info = pred.to_coco(cat_ids)
        write_png(target, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self._written.append({"image_id": rec["img_id"], "file_name": target.name, "segments_info": info})

    def evaluate(self) -> dict[str, Any]:
        from det.core.fileio import atomic_write_json

        parts = dist.all_gather_object(self._stats)
        written = [w for part in dist.all_gather_object(self._written) for w in part]
        metrics: dict[str, Any] = {}
        if dist.is_main():
            if self.outfile_prefix:
                atomic_write_json(f"{self.outfile_prefix}.panoptic.json",
                                  {"annotations": sorted(written, key=lambda w: w["image_id"]),
                                   "categories": self.dataset.categories})
            if not self.format_only:
                metrics = self._summary(parts)
        return dist.broadcast_object(metrics)

    def _summary(self, parts: list[dict]) -> dict[str, Any]:
        total = new_stats()
        for part in parts:
            for cat, (iou, tp, fp, fn) in part.items():
                s = total.setdefault(cat, [0.0, 0, 0, 0])
                s[0], s[1], s[2], s[3] = s[0] + iou, s[1] + tp, s[2] + fp, s[3] + fn
        res = pq_summary(total, self.dataset.categories, classwise=self.classwise)
        metrics = {f"coco_panoptic/{k}": v for k, v in res.items() if k != "classwise"}
        for name, row in res.get("classwise", {}).items():
            metrics.update({f"coco_panoptic/{name}_{k}": row[k] for k in ("PQ", "SQ", "RQ")})
        return metrics


def _load_file_gt(ann_file: str) -> dict[int, dict]:
    from det.core.fileio import read_json

    doc = read_json(ann_file, "COCO panoptic JSON")
    try:
        return {int(a["image_id"]): a for a in doc["annotations"]}
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{ann_file}: expected 'annotations' with image_id, file_name, segments_info") from None


def _isin(ids: Any, segs: dict) -> Any:
    import numpy as np

    return np.isin(ids, np.fromiter(segs, np.int64, len(segs)))
