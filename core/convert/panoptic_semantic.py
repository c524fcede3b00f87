"""COCO panoptic -> semantic label PNGs, as MMDetection's
`tools/dataset_converters/prepare_coco_semantic_annos_from_panoptic_annos.py` writes them:
every category of the JSON (things and stuff) becomes its index in the JSON's `categories`
order (0, 1, ...), unlabeled pixels and PNG ids without a segment 255; one single-channel uint8
PNG per image under the same file name. For `data/coco` (a folder) the splits val2017 and
train2017 go from `annotations/panoptic_{split}.json` to `annotations/panoptic_semseg_{split}/`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from det.core.convert.common import parallel_map, plan_outputs, summary
from det.core.errors import DataError
from det.core.fileio import read_json
from det.core.structures.panoptic import IGNORE_LABEL

COCO_SPLITS = ("val2017", "train2017")


def semseg_dir(panoptic_json: Path) -> Path:
    """Default output folder: panoptic_X.json -> panoptic_semseg_X/ (else X_semseg/)."""
    stem = panoptic_json.stem
    name = stem.replace("panoptic_", "panoptic_semseg_", 1) if stem.startswith("panoptic_") else f"{stem}_semseg"
    return panoptic_json.parent / name


def _id_map(doc: dict, path: Path) -> dict[int, int]:
    try:
        ids = [int(c["id"]) for c in doc["categories"]]
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: 'categories' must be a list of objects with 'id'") from None
    if len(ids) > 254:
        raise DataError(f"{path}: {len(ids)} categories; a uint8 semantic map holds at most 254 (255 = unlabeled)")
    return {cid: i for i, cid in enumerate(ids)}


def _jobs(doc: dict, path: Path, png_dir: Path, out_dir: Path, id_map: dict[int, int]) -> list[tuple]:
    if not isinstance(doc.get("annotations"), list):
        raise DataError(f"{path}: missing or invalid 'annotations' list")
    jobs = []
    for i, ann in enumerate(doc["annotations"]):
        where = f"{path}: annotations[{i}]"
        try:
            name = str(ann["file_name"])
            segs = [(int(s["id"]), int(s["category_id"])) for s in ann["segments_info"]]
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: needs file_name and segments_info with id and category_id") from None
        for j, (_, cid) in enumerate(segs):
            if cid not in id_map:
                raise DataError(f"{where}.segments_info[{j}]: unknown category_id {cid}")
        source = png_dir / name
        if not source.is_file():
            raise DataError(f"{where}: panoptic PNG {source} not found")
        jobs.append((source, out_dir / name, [(sid, id_map[cid]) for sid, cid in segs]))
    return jobs


def _convert_one(job: tuple) -> int:
    from det.core.data.panoptic_io import read_segment_ids, write_png

    source, target, segs = job
    ids = read_segment_ids(source)
    out = np.full(ids.shape, IGNORE_LABEL, np.uint8)
    for sid, label in segs:
        out[ids == sid] = label
    write_png(target, out)
    return len(segs)


def panoptic_to_semantic(panoptic_json: str | Path, png_dir: str | Path | None = None, out_dir: str | Path | None = None,
                         nproc: int = 1, force: bool = False) -> dict:
    """Convert one panoptic JSON + PNG folder (default: the JSON path without .json)."""
    path = Path(panoptic_json)
    doc = read_json(path, "COCO panoptic JSON")
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a COCO panoptic JSON object")
    png_dir = Path(png_dir) if png_dir is not None else path.with_suffix("")
    out_dir = Path(out_dir) if out_dir is not None else semseg_dir(path)
    id_map = _id_map(doc, path)
    jobs = _jobs(doc, path, png_dir, out_dir, id_map)
    plan_outputs([job[1] for job in jobs], force)
    out_dir.mkdir(parents=True, exist_ok=True)
    segments = parallel_map(_convert_one, jobs, nproc, f"semantic {path.stem}")
    return summary(out_dir, images=len(jobs), segments=int(sum(segments)), classes=len(id_map))


def convert_coco_panoptic_semantic(source: str | Path, out_dir: str | Path | None = None, nproc: int = 1,
                                   force: bool = False) -> list[dict]:
    """A panoptic JSON file, or a COCO root holding annotations/panoptic_{val2017,train2017}.json."""
    source = Path(source)
    if source.is_file():
        return [panoptic_to_semantic(source, out_dir=out_dir, nproc=nproc, force=force)]
    if not source.is_dir():
        raise DataError(f"{source}: not found (give a panoptic JSON or the COCO root folder)")
    found = [source / "annotations" / f"panoptic_{s}.json" for s in COCO_SPLITS]
    found = [p for p in found if p.is_file()]
    if not found:
        raise DataError(f"{source}: no annotations/panoptic_val2017.json or panoptic_train2017.json")
    if out_dir is not None and len(found) > 1:
        raise DataError("--out-dir names one folder; with a COCO root both splits are written beside their JSON")
    return [panoptic_to_semantic(p, out_dir=out_dir, nproc=nproc, force=force) for p in found]
