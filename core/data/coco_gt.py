"""Build a COCO ground-truth dict from det's per-image records (for any dataset type)."""
from __future__ import annotations

from collections.abc import Sequence

from det.core.structures.masks import polygons_to_rle


def data_list_to_coco(data_list: Sequence[dict], classes: Sequence[str], cat_ids: Sequence[int]) -> dict:
    images, annotations = [], []
    ann_id = 1
    for info in data_list:
        images.append({"id": int(info["img_id"]), "file_name": str(info.get("file_name", info["img_path"])),
                       "width": int(info["width"]), "height": int(info["height"])})
        for inst in info["instances"]:
            x1, y1, x2, y2 = (float(v) for v in inst["bbox"])
            ann = {"id": ann_id, "image_id": int(info["img_id"]), "category_id": int(cat_ids[int(inst["bbox_label"])]),
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": int(bool(inst.get("ignore_flag", False)))}
            mask = inst.get("mask")
            if mask is not None:
                ann["segmentation"] = mask
            if "area" in inst:
                ann["area"] = float(inst["area"])
            elif mask is not None:
                ann["area"] = _mask_area(mask, int(info["height"]), int(info["width"]))
            else:
                ann["area"] = (x2 - x1) * (y2 - y1)
            annotations.append(ann)
            ann_id += 1
    categories = [{"id": int(c), "name": str(n)} for c, n in zip(cat_ids, classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def _mask_area(mask, h: int, w: int) -> float:
    from pycocotools import mask as mask_utils

    if isinstance(mask, dict):
        rle = mask
        if isinstance(rle.get("counts"), list):
            rle = mask_utils.frPyObjects(rle, *rle["size"])
        elif isinstance(rle.get("counts"), str):
            rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
        return float(mask_utils.area(rle))
    rle = polygons_to_rle(mask, h, w)
    return float(mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode("ascii")}))


__all__ = ["data_list_to_coco"]
