"""`det train --data/--epochs/--batch-size/--img-size`: shortcuts that expand to the `--set`
overrides they stand for, so a preset trains on the user's own data in one command.

`--data PATH` accepts a COCO annotation file, a COCO folder (`annotations/instances_*.json` or
`instances_*.json` at its top, images beside them), an Ultralytics `data.yaml` (converted to
COCO JSON into `convert_dir`) or a VOC root (`ImageSets/Main/*.txt`, `Annotations/`,
`JPEGImages/`). Classes come from the data and every `num_classes` under `model` is resized.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from det.core.errors import DataError

SPLITS = ("train", "val", "test")
SIZE_KEYS = ("scale", "img_scale", "crop_size", "size")


def set_line(key: str, value: Any) -> str:
    """One `KEY=VALUE` override (value in YAML flow style, on one line)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30, sort_keys=False).strip()
    return f"{key}={text[:-4].strip() if text.endswith('...') else text}"


def data_overrides(cfg: dict, data: str | Path, convert_dir: Path | None = None) -> list[str]:
    """The `--set` lines that point `data.train/val/test` at `data` and resize the model's heads."""
    path = Path(data)
    if not path.exists():
        raise DataError(f"--data {data}: not found")
    splits, classes = _find_splits(path, convert_dir)
    lines = []
    for split in SPLITS:
        if split == "test" and "test" not in splits and not isinstance((cfg.get("data") or {}).get("test"), dict):
            continue
        dataset = splits.get(split) or splits.get("val") or splits["train"]
        if split != "train":
            dataset = {**dataset, "test_mode": True}
        lines.append(set_line(f"data.{split}.dataset", dataset))
    lines.append(set_line("data.classes", list(classes)))
    lines += [set_line(key, len(classes)) for key in _num_classes_keys(cfg.get("model") or {}, "model")]
    return lines


def _num_classes_keys(node: Any, prefix: str) -> list[str]:
    if isinstance(node, dict):
        keys = [f"{prefix}.num_classes"] if "num_classes" in node else []
        for key, value in node.items():
            keys += _num_classes_keys(value, f"{prefix}.{key}")
        return keys
    if isinstance(node, list):
        return [k for i, v in enumerate(node) for k in _num_classes_keys(v, f"{prefix}.{i}")]
    return []


def _find_splits(path: Path, convert_dir: Path | None) -> tuple[dict[str, dict], list[str]]:
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        return _yolo(path, convert_dir)
    if path.is_file():
        return {"train": _coco_entry(path)}, _coco_classes(path)
    if (path / "ImageSets" / "Main").is_dir():
        return _voc(path)
    if (path / "data.yaml").is_file():
        return _yolo(path / "data.yaml", convert_dir)
    return _coco_folder(path)


def _coco_folder(root: Path) -> tuple[dict[str, dict], list[str]]:
    """`instances_train*.json` / `instances_val*.json` (or train*.json / val*.json) in
    `root/annotations/` or `root/`."""
    found: dict[str, dict] = {}
    for folder in (root / "annotations", root):
        for split in SPLITS:
            matches = sorted(folder.glob(f"instances_{split}*.json")) or sorted(folder.glob(f"{split}*.json"))
            if matches and split not in found:
                found[split] = _coco_entry(matches[0], root)
    if "train" not in found:
        raise DataError(f"--data {root}: no COCO annotation file for training (annotations/instances_train*.json "
                        f"or instances_train*.json)")
    return found, _coco_classes(Path(found["train"]["ann_file"]))


def _coco_entry(ann_file: Path, root: Path | None = None) -> dict:
    """A CocoDataset entry whose image prefix makes the first `file_name` resolve."""
    doc = _read_coco(ann_file)
    root = root or ann_file.parent
    first = (doc.get("images") or [{}])[0].get("file_name", "")
    stem = ann_file.stem.replace("instances_", "")
    candidates = [root, root / stem, root / "images" / stem, root / "images", ann_file.parent]
    prefix = next((c for c in candidates if (c / first).is_file()), root)
    return {"type": "CocoDataset", "ann_file": str(ann_file), "data_prefix": str(prefix)}


def _read_coco(ann_file: Path) -> dict:
    from det.core.fileio import read_json

    doc = read_json(ann_file, "COCO annotation file")
    if not isinstance(doc, dict) or not isinstance(doc.get("categories"), list) or not doc["categories"]:
        raise DataError(f"{ann_file}: not a COCO annotation file (no 'categories')")
    return doc


def _coco_classes(ann_file: Path) -> list[str]:
    cats = sorted(_read_coco(ann_file)["categories"], key=lambda c: c["id"])
    return [str(c["name"]) for c in cats]


def _voc(root: Path) -> tuple[dict[str, dict], list[str]]:
    """A VOC year folder (VOC2007/): trainval.txt or train.txt for training, val.txt/test.txt."""
    lists = root / "ImageSets" / "Main"
    names = {"train": ("trainval.txt", "train.txt"), "val": ("val.txt", "test.txt"), "test": ("test.txt",)}
    found = {}
    for split, options in names.items():
        hit = next((lists / n for n in options if (lists / n).is_file()), None)
        if hit is not None:
            found[split] = {"type": "VOCDataset", "data_root": str(root), "ann_file": f"ImageSets/Main/{hit.name}",
                            "data_prefix": ""}
    if "train" not in found:
        raise DataError(f"--data {root}: no ImageSets/Main/trainval.txt or train.txt")
    return found, _voc_classes(root)


def _voc_classes(root: Path) -> list[str]:
    """Class names found in the XML files (sorted), or the 20 VOC classes when they are all VOC's."""
    import xml.etree.ElementTree as ET

    from det.core.data.datasets.voc import VOC_CLASSES

    names: set[str] = set()
    for xml in sorted((root / "Annotations").glob("*.xml")):
        names.update(el.text.strip() for el in ET.parse(xml).getroot().iter("name") if el.text)
    if not names:
        raise DataError(f"--data {root}: no objects in Annotations/*.xml")
    return list(VOC_CLASSES) if names <= set(VOC_CLASSES) else sorted(names)


def _yolo(data_yaml: Path, convert_dir: Path | None) -> tuple[dict[str, dict], list[str]]:
    from det.core.convert.yolo import read_data_yaml, yolo_to_coco

    root, names, sources = read_data_yaml(data_yaml)
    out = convert_dir or data_yaml.parent / ".det_coco"
    rows = yolo_to_coco(data_yaml, out, splits=[s for s in SPLITS if s in sources], force=True)
    found = {r["split"]: {"type": "CocoDataset", "ann_file": r["file"],
                          "data_prefix": str(root)} for r in rows}
    if "train" not in found:
        raise DataError(f"{data_yaml}: no 'train' split")
    return found, list(names)


def epochs_override(epochs: int) -> str:
    return set_line("train.max_epochs", int(epochs))


def batch_size_override(batch_size: int) -> str:
    return set_line("data.train.batch_size", int(batch_size))


def img_size_overrides(cfg: dict, size: tuple[int, int]) -> list[str]:
    """Scale every size key of every pipeline by (H, W) / the preset's test resize (H, W), so
    a 384 px RandomResize over a 192 px base becomes 2 x the new size. Sizes in det's
    pipelines are (W, H), as MMDetection's."""
    base = _test_scale(cfg)
    if base is None:
        raise DataError("--img-size: the preset's test pipeline has no Resize scale to scale from")
    fy, fx = size[0] / base[1], size[1] / base[0]
    lines = []
    for split, section in (cfg.get("data") or {}).items():
        if not isinstance(section, dict):
            continue
        for key in ("pipeline", "switch_pipeline"):
            for i, step in enumerate(section.get(key) or []):
                lines += _step_size_lines(step, f"data.{split}.{key}.{i}", fx, fy, base[0] >= base[1])
    return lines


def _is_pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)


def _step_size_lines(step: Any, prefix: str, fx: float, fy: float, landscape: bool) -> list[str]:
    """Size overrides of one transform, of RandomChoiceResize's `scales` and of the transforms
    inside a RandomChoice. Keep-ratio `scales` pairs bound the long and short edge in either
    order ((480, 1333)), so each number scales with the edge it bounds (the test resize's long
    edge is W when `landscape`); an absolute_range crop's (min, max) edge lengths scale by the
    smaller factor."""
    if not isinstance(step, dict):
        return []
    lines = []
    for name in SIZE_KEYS:
        value = step.get(name)
        if _is_pair(value):
            gx, gy = (min(fx, fy),) * 2 if step.get("crop_type") == "absolute_range" else (fx, fy)
            lines.append(set_line(f"{prefix}.{name}", [round(value[0] * gx), round(value[1] * gy)]))
    scales = step.get("scales")
    if isinstance(scales, list) and scales and all(_is_pair(v) for v in scales):
        fl, fs = (fx, fy) if landscape else (fy, fx)
        edge = (lambda v, pair: round(v * (fl if v == max(pair) else fs))) if step.get("keep_ratio", True) else None
        new = [[edge(a, (a, b)), edge(b, (a, b))] if edge else [round(a * fx), round(b * fy)] for a, b in scales]
        lines.append(set_line(f"{prefix}.scales", new))
    for j, branch in enumerate(step.get("transforms") or [] if step.get("type") == "RandomChoice" else []):
        if isinstance(branch, list):
            for k, sub in enumerate(branch):
                lines += _step_size_lines(sub, f"{prefix}.transforms.{j}.{k}", fx, fy, landscape)
        else:
            lines += _step_size_lines(branch, f"{prefix}.transforms.{j}", fx, fy, landscape)
    return lines


def _test_scale(cfg: dict) -> tuple[float, float] | None:
    data = cfg.get("data") or {}
    section = data.get("test") if isinstance(data.get("test"), dict) else data.get("val") or {}
    for step in section.get("pipeline") or []:
        if isinstance(step, dict) and step.get("type") == "Resize" and isinstance(step.get("scale"), (list, tuple)):
            return float(step["scale"][0]), float(step["scale"][1])
    return None


def describe(lines: list[str]) -> str:
    """The overrides as the `--set` options they equal, for the log."""
    return " ".join(f"--set {json.dumps(line) if ' ' in line else line}" for line in lines)
