"""COCO evaluation with pycocotools, returning MMDetection's CocoMetric keys.

`coco_evaluate(gt, results)` -> {"coco/bbox_mAP": ..., "coco/bbox_mAP_50": ..., ...}. Like
MMDetection, `proposal_nums` become COCOeval's `maxDets`, so mAP is taken at the last of them
(1000 by default; identical to pycocotools' default when no image has more than 100 detections).
Values are not rounded. pycocotools' prints are swallowed (or sent to stderr with verbose=True)
so that stdout stays clean for results.

The loaders (`load_coco_gt`, `load_coco_results`, `check_results`) turn every malformed input
into a one-line `DetError` naming the file: missing file, wrong schema, image or category ids
that the annotations do not have.
"""
from __future__ import annotations

import contextlib
import copy
import io
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DetError
from det.core.fileio import read_json

IOU_TYPES = ("bbox", "segm", "proposal")
AP_ITEMS = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")


@contextlib.contextmanager
def quiet(verbose: bool = False) -> Iterator[None]:
    """Silence pycocotools' prints (or route them to stderr when `verbose`)."""
    with contextlib.redirect_stdout(sys.stderr if verbose else io.StringIO()):
        yield


def _name(source: Any) -> str:
    return str(source) if isinstance(source, (str, Path)) else "annotations"


def validate_gt(data: Any, name: str = "annotations") -> dict:
    """Check the COCO annotation schema (images, annotations, categories with their ids)."""
    if not isinstance(data, dict):
        raise DetError(f"{name}: COCO annotations must be a JSON object with 'images', 'annotations', 'categories'")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise DetError(f"{name}: missing or invalid '{key}' list (not a COCO annotation file?)")
    if not isinstance(data.get("annotations", []), list):
        raise DetError(f"{name}: 'annotations' must be a list")
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise DetError(f"{name}: images[{i}] has no 'id'")
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or "id" not in cat:
            raise DetError(f"{name}: categories[{i}] has no 'id'")
    for i, ann in enumerate(data.get("annotations", [])):
        if not isinstance(ann, dict):
            raise DetError(f"{name}: annotations[{i}] is not an object")
        for key in ("image_id", "category_id", "bbox"):
            if key not in ann:
                raise DetError(f"{name}: annotations[{i}] has no '{key}'")
        box = ann["bbox"]
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            raise DetError(f"{name}: annotations[{i}].bbox must be [x, y, w, h]")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box):
            raise DetError(f"{name}: annotations[{i}].bbox {box} must hold four finite numbers")
    return data


def load_coco_gt(gt: Any):
    """A pycocotools COCO object from a path, a dict or an existing COCO object."""
    from pycocotools.coco import COCO

    if isinstance(gt, COCO):
        return gt
    name = _name(gt)
    if isinstance(gt, (str, Path)):
        data = read_json(gt, "annotation file")
    elif isinstance(gt, dict):
        data = gt
    else:
        raise DetError(f"ground truth must be a COCO JSON path or dict, got {type(gt).__name__}")
    data = validate_gt(data, name)
    data = dict(data)
    data.setdefault("annotations", [])
    # pycocotools reads these keys while evaluating; fill them the way COCO files have them.
    anns = []
    for i, ann in enumerate(data["annotations"]):
        if "id" not in ann or "area" not in ann or "iscrowd" not in ann:
            ann = dict(ann)
            ann.setdefault("id", i + 1)
            ann.setdefault("area", float(ann["bbox"][2]) * float(ann["bbox"][3]))
            ann.setdefault("iscrowd", 0)
        anns.append(ann)
    data["annotations"] = anns
    coco = COCO()
    coco.dataset = data
    with quiet():
        coco.createIndex()
    return coco


def check_results(results: Any, coco, name: str = "results", iou_type: str = "bbox") -> list[dict]:
    """Validate COCO results (a list of {image_id, category_id, score, bbox|segmentation})
    against the annotations; returns the list."""
    if not isinstance(results, list):
        raise DetError(f"{name}: COCO results must be a JSON list of detections, got {type(results).__name__}")
    need = ("image_id", "score", "segmentation" if iou_type == "segm" else "bbox")
    if iou_type != "proposal":
        need = need + ("category_id",)
    img_ids = set(coco.getImgIds())
    cat_ids = set(coco.getCatIds())
    bad_imgs: list = []
    bad_cats: list = []
    for i, det in enumerate(results):
        if not isinstance(det, dict):
            raise DetError(f"{name}: item {i} is not an object (COCO results are a list of dicts)")
        for key in need:
            if key not in det:
                raise DetError(f"{name}: item {i} has no '{key}' (keys: {', '.join(sorted(det)) or 'none'})")
        if "bbox" in need:
            box = det["bbox"]
            if not isinstance(box, (list, tuple)) or len(box) != 4:
                raise DetError(f"{name}: item {i}: 'bbox' must be [x, y, w, h]")
        if det["image_id"] not in img_ids:
            bad_imgs.append(det["image_id"])
        if iou_type != "proposal" and det["category_id"] not in cat_ids:
            bad_cats.append(det["category_id"])
    if bad_imgs:
        shown = ", ".join(map(str, sorted(set(bad_imgs), key=str)[:5]))
        raise DetError(f"{name}: {len(bad_imgs)} detections have image ids not in the annotations (e.g. {shown})")
    if bad_cats:
        shown = ", ".join(map(str, sorted(set(bad_cats), key=str)[:5]))
        raise DetError(f"{name}: {len(bad_cats)} detections have category ids not in the annotations (e.g. {shown})")
    _check_numbers(results, name, "bbox" in need)
    return results


def _check_numbers(results: list[dict], name: str, boxes: bool) -> None:
    """Scores (and boxes) are finite numbers, box sizes not negative: a NaN here would pass
    pycocotools and come out of fusion or evaluation as a silent NaN."""
    import numpy as np

    n = len(results)
    if not n:
        return
    width = 5 if boxes else 1
    try:
        flat = np.fromiter((v for d in results for v in ((d["score"], *d["bbox"]) if boxes else (d["score"],))),
                           dtype=np.float64, count=width * n).reshape(n, width)
    except (TypeError, ValueError):
        raise DetError(f"{name}: 'score' and 'bbox' must be numbers") from None
    bad = ~np.isfinite(flat).all(axis=1)
    if boxes:
        bad |= (flat[:, 3] < 0) | (flat[:, 4] < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = {k: results[i][k] for k in ("score", "bbox") if k in results[i]}
        raise DetError(f"{name}: item {i}: non-finite number or negative box size in {what} "
                       f"({int(bad.sum())} such detections)")


def load_coco_results(path: str | Path, coco, iou_type: str = "bbox") -> list[dict]:
    """Read and validate a COCO results JSON file."""
    return check_results(read_json(path, "results file"), coco, str(path), iou_type)


def _load_res(coco, results: list[dict], iou_type: str):
    """pycocotools' loadRes on copies (it mutates its input), or an empty result set."""
    from pycocotools.coco import COCO

    if not results:
        empty = COCO()
        empty.dataset = {"images": list(coco.dataset["images"]), "categories": copy.deepcopy(coco.dataset["categories"]),
                         "annotations": []}
        with quiet():
            empty.createIndex()
        return empty
    dets = []
    for det in results:
        det = dict(det)
        if iou_type == "segm":
            # With a 'bbox' present pycocotools takes the box area as the instance area, which
            # shifts the small/medium/large split; drop it so the mask area is used.
            det.pop("bbox", None)
        elif isinstance(det["bbox"], np.ndarray):
            det["bbox"] = det["bbox"].tolist()
        dets.append(det)
    with quiet():
        return coco.loadRes(dets)


def _ap(precision: np.ndarray) -> float:
    valid = precision[precision > -1]
    return float(np.mean(valid)) if valid.size else float("nan")


def coco_evaluate(gt: Any, results: list[dict] | str | Path, iou_type: str = "bbox", classwise: bool = False,
                  proposal_nums: Sequence[int] = (100, 300, 1000), img_ids: Iterable[int] | None = None,
                  verbose: bool = False) -> dict:
    """Evaluate COCO results against COCO ground truth.

    gt: annotation path, dict or pycocotools COCO. results: list of COCO result dicts or a path.
    Returns float metrics under MMDetection's keys (`coco/bbox_mAP`, ..., `coco/AR@100`, ...);
    with `classwise`, also `classwise` ({class name: AP}) and `classwise_detail`
    ({class name: {mAP, mAP_50, mAP_75, mAP_s, mAP_m, mAP_l}}).
    """
    from pycocotools.cocoeval import COCOeval

    if iou_type not in IOU_TYPES:
        raise DetError(f"unknown COCO metric '{iou_type}'; valid: {', '.join(IOU_TYPES)}")
    proposal_nums = [int(n) for n in proposal_nums]
    if len(proposal_nums) != 3:
        raise DetError(f"proposal_nums must hold 3 values (pycocotools summarises 3 maxDets), got {proposal_nums}")
    coco = load_coco_gt(gt)
    if iou_type == "segm":
        missing = [a.get("id") for a in coco.dataset["annotations"] if a.get("segmentation") is None]
        if missing:
            raise DetError(f"{_name(gt)}: {len(missing)} annotations have no 'segmentation' (e.g. id {missing[0]}); "
                           "segm evaluation needs masks")
    if isinstance(results, (str, Path)):
        results = load_coco_results(results, coco, iou_type)
    else:
        results = check_results(results, coco, "results", iou_type)
    dt = _load_res(coco, results, iou_type)
    evaluator = COCOeval(coco, dt, "bbox" if iou_type == "proposal" else iou_type)
    evaluator.params.maxDets = proposal_nums
    if img_ids is not None:
        evaluator.params.imgIds = sorted(set(img_ids))
    if iou_type == "proposal":
        evaluator.params.useCats = 0
    with quiet(verbose):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [float(s) for s in evaluator.stats]
    out: dict[str, Any] = {}
    if iou_type == "proposal":
        last = proposal_nums[-1]
        names = [f"AR@{n}" for n in proposal_nums] + [f"AR_s@{last}", f"AR_m@{last}", f"AR_l@{last}"]
        for name, value in zip(names, stats[6:12]):
            out[f"coco/{name}"] = value
        return out
    for name, value in zip(AP_ITEMS, stats[:6]):
        out[f"coco/{iou_type}_{name}"] = value
    if classwise:
        precisions = evaluator.eval["precision"]  # (iou, recall, class, area, maxdets)
        per_class, detail = {}, {}
        for idx, cat_id in enumerate(evaluator.params.catIds):
            name = str(coco.cats[cat_id].get("name", cat_id))
            row = {
                "mAP": _ap(precisions[:, :, idx, 0, -1]),
                "mAP_50": _ap(precisions[0, :, idx, 0, -1]),
                "mAP_75": _ap(precisions[5, :, idx, 0, -1]),
                "mAP_s": _ap(precisions[:, :, idx, 1, -1]),
                "mAP_m": _ap(precisions[:, :, idx, 2, -1]),
                "mAP_l": _ap(precisions[:, :, idx, 3, -1]),
            }
            per_class[name] = row["mAP"]
            detail[name] = row
        out["classwise"] = per_class
        out["classwise_detail"] = detail
    return out
