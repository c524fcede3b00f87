"""The COCO panoptic submission: prediction PNGs + JSON checked against the image list of a
ground-truth or image-info JSON (e.g. panoptic_image_info_test-dev2017.json) and rewritten as
the server expects (one PNG per listed image named after it, `segments_info` with measured
`area` and `bbox`, the listed categories)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from det.core.errors import DataError
from det.core.evaluation.panoptic import _annotations, categories_of


def _prediction(ids: np.ndarray, ann: dict, cat2label: dict[int, int]) -> Any:
    from det.core.structures.panoptic import PanopticPrediction

    segments = []
    for j, seg in enumerate(ann.get("segments_info") or []):
        try:
            sid, cid = int(seg["id"]), int(seg["category_id"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{ann['_where']}.segments_info[{j}]: needs id and category_id") from None
        if cid not in cat2label:
            raise DataError(f"{ann['_where']}.segments_info[{j}]: unknown category_id {cid}")
        segments.append({"id": sid, "label": cat2label[cid], "isthing": None, "score": seg.get("score")})
    present = set(np.unique(ids).tolist()) - {0}
    stray = sorted(present - {s["id"] for s in segments})
    if stray:
        raise DataError(f"{ann['_where']}: PNG segment id {stray[0]} has no entry in segments_info")
    return PanopticPrediction(ids, segments)


def format_panoptic_submission(info_json: str | Path, pred_json: str | Path, out_json: str | Path,
                               pred_dir: str | Path | None = None, force: bool = False) -> dict[str, Any]:
    """Write `out_json` and its PNG folder (the path without .json) for every image listed in
    `info_json`; each needs a prediction in `pred_json`."""
    from det.core.data.panoptic_io import read_segment_ids, write_panoptic_predictions
    from det.core.fileio import read_json
    from det.core.log import track

    info_json, pred_json = Path(info_json), Path(pred_json)
    info, preds_doc = read_json(info_json, "image info JSON"), read_json(pred_json, "panoptic predictions")
    categories = categories_of(info, info_json)
    cat_ids = [c["id"] for c in categories]
    cat2label = {cid: i for i, cid in enumerate(cat_ids)}
    if not isinstance(info.get("images"), list):
        raise DataError(f"{info_json}: missing or invalid 'images' list")
    preds = _annotations(preds_doc, pred_json)
    pred_dir = Path(pred_dir) if pred_dir is not None else pred_json.with_suffix("")

    def items():
        for i, img in enumerate(track(info["images"], "panoptic submission")):
            try:
                img_id, file_name = int(img["id"]), str(img["file_name"])
            except (KeyError, TypeError, ValueError):
                raise DataError(f"{info_json}: images[{i}] needs id and file_name") from None
            if img_id not in preds:
                raise DataError(f"{pred_json}: no prediction for image_id {img_id} ({file_name})")
            ann = preds[img_id]
            ids = read_segment_ids(pred_dir / ann["file_name"], "predicted panoptic PNG")
            yield {"id": img_id, "file_name": file_name}, _prediction(ids, ann, cat2label)

    return write_panoptic_predictions(out_json, items(), categories, cat_ids, force=force)
