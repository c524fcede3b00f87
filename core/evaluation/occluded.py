"""Occluded / separated mask recall (Zhan et al., BMVC 2022), as the seed's
CocoOccludedSeparatedMetric computes it.

An annotation list names COCO val objects that are partially occluded (mask connected) or
separated (mask split by the occluder): image file name, class name, box, RLE mask. An object is
recalled when, among its image's detections with score >= `score_thr` taken by decreasing score
(ties: smaller x, then smaller y of the box), the first of its class whose mask IoU reaches
`iou_thr` exists (the seed stops at the first one above the score threshold that matches).
Recall = recalled / listed x 100.

The published lists are pickles; det reads their JSON form
{"occluded": [{file_name, class, bbox, mask, extra}], "separated": [...]}, which
`det convert occluded-separated` writes from the pickles (only with --trust-pickle).
"""
from __future__ import annotations

import pickle
from collections import defaultdict
from pathlib import Path
from typing import Any

from det.core.errors import DetError
from det.core.fileio import read_json

KINDS = ("occluded", "separated")


def _item(raw: Any, where: str) -> dict:
    """A pickle item [file_name, class, extra, bbox, rle] -> the JSON form."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 5:
        raise DetError(f"{where}: expected [file_name, class, extra, bbox, mask], got {type(raw).__name__}")
    mask = dict(raw[4])
    if isinstance(mask.get("counts"), bytes):
        mask["counts"] = mask["counts"].decode()
    return {"file_name": str(raw[0]), "class": str(raw[1]), "extra": raw[2] if isinstance(raw[2], (int, float, str))
            else None, "bbox": [float(v) for v in raw[3]], "mask": mask}


def kind_of(path: Path) -> str:
    found = [k for k in KINDS if k in path.name.lower()]
    if len(found) != 1:
        raise DetError(f"{path}: cannot tell occluded from separated by the name; pass --kind occluded|separated")
    return found[0]


# The published lists hold plain containers, strings, numbers and numpy arrays (RLE masks, boxes):
# nothing else may be constructed, so even a trusted file cannot run code while it is read.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("builtins", "bytes"),
}


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to construct {module}.{name}")
        return super().find_class(module, name)


def convert_pickles(paths: list[Path], kinds: list[str], trust_pickle: bool) -> dict[str, list[dict]]:
    """The JSON form of the published pickles (unpickled only when the caller trusts them)."""
    if not trust_pickle:
        raise DetError(f"{paths[0]}: refusing to unpickle: loading a pickle runs any code it contains; "
                       "pass --trust-pickle if you trust where the file comes from")
    out: dict[str, list[dict]] = {}
    for path, kind in zip(paths, kinds):
        try:
            with open(path, "rb") as fh:
                raw = _PlainDataUnpickler(fh).load()
        except FileNotFoundError:
            raise DetError(f"{path}: file not found") from None
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad input file
            raise DetError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
        if not isinstance(raw, list):
            raise DetError(f"{path}: expected a list of annotations, got {type(raw).__name__}")
        out[kind] = [_item(r, f"{path}: item {i}") for i, r in enumerate(raw)]
    return out


def load_lists(path: str | Path) -> dict[str, list[dict]]:
    data = read_json(path, "occluded/separated annotation file")
    if not isinstance(data, dict) or not any(k in data for k in KINDS):
        raise DetError(f"{path}: expected an object with 'occluded' and/or 'separated' lists")
    for kind in KINDS:
        for i, item in enumerate(data.get(kind, [])):
            for key in ("file_name", "class", "mask"):
                if not isinstance(item, dict) or key not in item:
                    raise DetError(f"{path}: {kind}[{i}] has no '{key}'")
    return data


def _detections(coco, results: list[dict], score_thr: float) -> dict[str, list[tuple]]:
    names = {c: str(coco.cats[c].get("name", c)) for c in coco.getCatIds()}
    by_file: dict[str, list[tuple]] = defaultdict(list)
    for det in results:
        if det["score"] < score_thr:
            continue
        box = det.get("bbox") or (0.0, 0.0)
        x, y = float(box[0]), float(box[1])
        by_file[coco.imgs[det["image_id"]]["file_name"]].append((-float(det["score"]), x, y, names[det["category_id"]],
                                                                  det["segmentation"]))
    for dets in by_file.values():
        dets.sort(key=lambda d: d[:3])
    return by_file


def _recall(items: list[dict], dets: dict[str, list[tuple]], iou_thr: float) -> tuple[int, float]:
    from pycocotools import mask as mask_utils

    correct = 0
    for item in items:
        gt = item["mask"]
        for _, _, _, cls, seg in dets.get(item["file_name"], []):
            if cls == item["class"] and float(mask_utils.iou([seg], [gt], [0])[0][0]) >= iou_thr:
                correct += 1
                break
    return correct, (100.0 * correct / len(items) if items else float("nan"))


def occluded_separated_recall(coco, results: list[dict], lists: dict[str, list[dict]], score_thr: float = 0.3,
                              iou_thr: float = 0.75) -> dict[str, Any]:
    """{occluded_recall (%), occluded_correct, occluded_total, separated_...} from segm results."""
    dets = _detections(coco, results, score_thr)
    out: dict[str, Any] = {}
    for kind in KINDS:
        if kind in lists:
            correct, recall = _recall(lists[kind], dets, iou_thr)
            out.update({f"{kind}_recall": recall, f"{kind}_correct": correct, f"{kind}_total": len(lists[kind])})
    return out
