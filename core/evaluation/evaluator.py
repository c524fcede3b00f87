"""Evaluators: turn model predictions (list[Instances] in original-image coordinates, with the
batch's DetSample records) into metrics, gathering predictions from every rank.

    evaluation: {type: CocoMetric, metric: [bbox], classwise: false}
    evaluation: {type: VOCMetric, iou_thr: 0.5, eval_mode: area}

CocoMetric converts predictions into COCO results (xywh boxes, category ids from
`dataset.cat_ids`, RLE masks) and calls `det.core.evaluation.coco.coco_evaluate` with
`dataset.coco_gt()`. VOCMetric computes VOC mAP against the samples' ground truth (boxes mapped
back to original-image coordinates by the dataset's `gt_instances(index)` when available).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from det.core.config.build import build
from det.core import dist
from det.core.errors import ConfigError
from det.core.evaluation.panoptic_metric import CocoPanopticMetric
from det.core.evaluation.voc import voc_map


class CocoMetric:
    """COCO bbox / segm / proposal metrics (see evaluation/coco.py); `backend`: det | pycocotools."""

    def __init__(self, dataset: Any = None, metric: str | list[str] = "bbox", classwise: bool = False,
                 proposal_nums: Sequence[int] = (100, 300, 1000), format_only: bool = False, ann_file: str | None = None,
                 backend: str = "det"):
        metrics = [metric] if isinstance(metric, str) else list(metric)
        for m in metrics:
            if m not in ("bbox", "segm", "proposal"):
                raise ConfigError(f"evaluation.metric: unknown metric '{m}'; valid: bbox, segm, proposal")
        if backend not in ("det", "pycocotools"):
            raise ConfigError(f"evaluation.backend: unknown backend '{backend}'; valid: det, pycocotools")
        self.metrics, self.classwise, self.backend = metrics, bool(classwise), backend
        self.proposal_nums, self.format_only = tuple(proposal_nums), bool(format_only)
        self.ann_file = ann_file
        self.dataset = dataset
        self._results: list[dict] = []

    @property
    def cat_ids(self) -> list[int]:
        ids = getattr(self.dataset, "cat_ids", None)
        if ids is None:
            classes = getattr(self.dataset, "classes", None) or []
            return list(range(1, len(classes) + 1))
        return [int(i) for i in ids]

    def reset(self) -> None:
        self._results = []

    def process(self, samples: Sequence[Any], preds: Sequence[Any]) -> None:
        with_masks = "segm" in self.metrics
        ids = self.cat_ids
        for sample, pred in zip(samples, preds):
            self._results += pred.to_coco(sample.img_id, ids, with_masks)

    def results(self) -> list[dict]:
        """COCO results of all ranks (every rank gets the full list)."""
        gathered = dist.all_gather_object(self._results)
        return [r for part in gathered for r in part]

    def evaluate(self) -> dict[str, float]:
        results = self.results()
        if self.format_only:
            return {}
        metrics: dict[str, Any] = {}
        if dist.is_main():
            gt = self.ann_file or self.dataset.coco_gt()
            for m in self.metrics:
                metrics.update(self._score(gt, results, m))
        return dist.broadcast_object(metrics)

    def _score(self, gt: Any, results: list[dict], iou_type: str) -> dict[str, Any]:
        from det.core.evaluation.coco import coco_evaluate

        return coco_evaluate(gt, results, iou_type=iou_type, classwise=self.classwise,
                             proposal_nums=self.proposal_nums, backend=self.backend)


class LVISMetric(CocoMetric):
    """LVIS v1 AP (AP, AP50, AP75, APs/m/l, APr/c/f, AR@300) equal to the lvis package (evaluation/lvis.py).

    Models must keep at most 300 detections per image (`test_cfg.max_per_img: 300`)."""

    def __init__(self, dataset: Any = None, metric: str | list[str] = "bbox", classwise: bool = False,
                 format_only: bool = False, ann_file: str | None = None):
        metrics = [metric] if isinstance(metric, str) else list(metric)
        for m in metrics:
            if m not in ("bbox", "segm"):
                raise ConfigError(f"evaluation.metric: unknown LVIS metric '{m}'; valid: bbox, segm")
        super().__init__(dataset, metrics, classwise, format_only=format_only, ann_file=ann_file)

    def _score(self, gt: Any, results: list[dict], iou_type: str) -> dict[str, Any]:
        from det.core.evaluation.lvis import lvis_evaluate

        return lvis_evaluate(gt, results, iou_type=iou_type, classwise=self.classwise)


class CrowdHumanMetric(CocoMetric):
    """CrowdHuman AP, mMR (MR^-2) and JI of full-body boxes, as MMDetection's (evaluation/crowdhuman.py).

    Scores the dataset's odgt records (`CrowdHumanDataset.eval_images()`), or `ann_file` (an odgt
    file; image sizes from id_hw_{train,val}.json beside it or the images in Images/)."""

    def __init__(self, dataset: Any = None, metric: str | list[str] = ("AP", "MR", "JI"), iou_thr: float = 0.5,
                 format_only: bool = False, ann_file: str | None = None):
        metrics = [metric] if isinstance(metric, str) else list(metric)
        for m in metrics:
            if m not in ("AP", "MR", "JI"):
                raise ConfigError(f"evaluation.metric: unknown CrowdHuman metric '{m}'; valid: AP, MR, JI")
        super().__init__(dataset, "bbox", format_only=format_only, ann_file=ann_file)
        self.crowd_metrics, self.iou_thr = tuple(metrics), float(iou_thr)

    def evaluate(self) -> dict[str, float]:
        from det.core.evaluation.crowdhuman import crowdhuman_evaluate, load_crowdhuman

        results = self.results()
        metrics: dict[str, Any] = {}
        if dist.is_main() and not self.format_only:
            images = load_crowdhuman(self.ann_file) if self.ann_file else self.dataset.eval_images()
            metrics = crowdhuman_evaluate(images, results, self.crowd_metrics, self.iou_thr)
        return dist.broadcast_object(metrics)


class OpenImagesMetric(CocoMetric):
    """Open Images mAP (group-of, hierarchy, image-level labels) as MMDetection's
    (evaluation/openimages.py), on an OpenImagesDataset's images and class hierarchy."""

    def __init__(self, dataset: Any = None, iou_thrs: float = 0.5, ioa_thrs: float = 0.5, classwise: bool = False,
                 format_only: bool = False):
        super().__init__(dataset, "bbox", classwise, format_only=format_only)
        self.iou_thr, self.ioa_thr = float(iou_thrs), float(ioa_thrs)

    def evaluate(self) -> dict[str, Any]:
        from det.core.evaluation.openimages import openimages_evaluate

        results = self.results()
        metrics: dict[str, Any] = {}
        if dist.is_main() and not self.format_only:
            ds = self.dataset
            metrics = openimages_evaluate(ds.eval_images(), results, ds.mids, ds.relation_matrix, self.iou_thr,
                                          self.ioa_thr, self.classwise, list(ds.classes))
        return dist.broadcast_object(metrics)


class CityscapesMetric(CocoMetric):
    """Cityscapes instance AP (`cityscapes/mAP`, `cityscapes/AP@50`) as cityscapesscripts computes it
    (evaluation/cityscapes.py), from the gtFine instanceIds PNGs under `gt_dir` (e.g.
    data/cityscapes/gtFine/val) for the masks the model predicts."""

    def __init__(self, dataset: Any = None, gt_dir: str = "data/cityscapes/gtFine/val", classwise: bool = False,
                 format_only: bool = False, ann_file: str | None = None):
        super().__init__(dataset, "segm", classwise, format_only=format_only, ann_file=ann_file)
        self.gt_dir = gt_dir

    def evaluate(self) -> dict[str, Any]:
        from det.core.evaluation.cityscapes import cityscapes_evaluate

        results = self.results()
        metrics: dict[str, Any] = {}
        if dist.is_main() and not self.format_only:
            metrics = cityscapes_evaluate(self.ann_file or self.dataset.coco_gt(), results, self.gt_dir)
            classwise = metrics.pop("classwise")
            if self.classwise:
                metrics.update({f"cityscapes/{c}_AP": v["AP"] for c, v in classwise.items()})
        return dist.broadcast_object(metrics)


class VOCMetric:
    """VOC mAP at `iou_thr` ('area' or '11points'), difficult boxes ignored."""

    def __init__(self, dataset: Any = None, iou_thr: float = 0.5, eval_mode: str = "area",
                 legacy_coordinate: bool = False, classwise: bool = False):
        if eval_mode not in ("area", "11points"):
            raise ConfigError(f"evaluation.eval_mode: expected 'area' or '11points', got {eval_mode!r}")
        self.dataset, self.iou_thr, self.mode = dataset, float(iou_thr), eval_mode
        self.legacy, self.classwise = bool(legacy_coordinate), bool(classwise)
        self._items: list[tuple] = []

    def reset(self) -> None:
        self._items = []

    def process(self, samples: Sequence[Any], preds: Sequence[Any]) -> None:
        for sample, pred in zip(samples, preds):
            gt = sample.meta.get("ori_gt") if isinstance(getattr(sample, "meta", None), dict) else None
            if gt is None:
                gt = sample.gt_in_original()
            gt, pred = gt.numpy(), pred.numpy()
            boxes, labels = gt.bboxes.reshape(-1, 4), gt.labels.reshape(-1)
            ignore = gt.ignore.reshape(-1) if gt.ignore is not None else np.zeros(len(labels), bool)
            scores = pred.scores if pred.scores is not None else np.ones(len(pred), np.float32)
            det = np.concatenate([pred.bboxes.reshape(-1, 4), scores.reshape(-1, 1)], 1)
            self._items.append((sample.img_id, det, pred.labels.reshape(-1), boxes, labels, ignore))

    def evaluate(self) -> dict[str, float]:
        items = [it for part in dist.all_gather_object(self._items) for it in part]
        metrics: dict[str, float] = {}
        if dist.is_main():
            classes = list(getattr(self.dataset, "classes", []) or [])
            num_classes = len(classes) or int(max([it[2].max(initial=-1) for it in items] + [it[4].max(initial=-1) for it in items]) + 1)
            dets = [[it[1][it[2] == c] for c in range(num_classes)] for it in items]
            mean_ap, per_class = voc_map(dets, [it[3] for it in items], [it[4] for it in items], [it[5] for it in items],
                                         num_classes, self.iou_thr, self.mode, self.legacy)
            tag = f"AP{int(round(self.iou_thr * 100))}"
            metrics = {"pascal_voc/mAP": mean_ap, f"pascal_voc/{tag}": mean_ap}
            if self.classwise:
                for c, r in enumerate(per_class):
                    name = classes[c] if c < len(classes) else str(c)
                    metrics[f"pascal_voc/{name}_{tag}"] = r["ap"]
        return dist.broadcast_object(metrics)


EVALUATORS = {"CocoMetric": CocoMetric, "LVISMetric": LVISMetric, "VOCMetric": VOCMetric,
              "CrowdHumanMetric": CrowdHumanMetric, "OpenImagesMetric": OpenImagesMetric,
              "CityscapesMetric": CityscapesMetric, "CocoPanopticMetric": CocoPanopticMetric}


def build_evaluator(cfg: dict | None, dataset: Any) -> Any:
    """The `evaluation` section -> an evaluator bound to `dataset` (CocoMetric by default)."""
    return build(cfg or {"type": "CocoMetric"}, EVALUATORS, "evaluation", dataset=dataset)
