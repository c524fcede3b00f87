"""det convert vs MMDetection's dataset converter scripts: speed and identical output.

    .venv/bin/python benchmarks/convert.py [--quick] [--json OUT]

Builds synthetic source trees (the test fixtures of tests/core/convert, replicated), runs det's
converter and MMDetection's script (imported from the peer environment, same process) on the
same tree, times both and compares the JSON they write after putting images in the same order
(MMDetection lists files in directory order, det sorts them). Differences that are by design
are normalised and listed in the notes.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "benchmarks" / "parity"))
sys.path.insert(0, str(REPO / "tests" / "core" / "convert"))
import convert_trees as trees  # noqa: E402
from common import arg_parser, emit  # noqa: E402


def timed(fn, repeat: int = 2) -> float:
    """Best of `repeat` runs (the first pays one-time imports), in ms."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def load_script(name: str):
    """An MMDetection converter script as a module (None when the peer is missing)."""
    from mmdet_peer import load_mmdet

    if load_mmdet() is None:
        return None
    import mmdet

    path = Path(mmdet.__file__).parent / ".mim" / "tools" / "dataset_converters" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"mmdet_tool_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # workers unpickle its functions by module name
    spec.loader.exec_module(module)
    return module


def canonical(coco: dict, drop_image_keys=(), drop_ann_keys=()) -> dict:
    """Images sorted by file name with ids renumbered; annotations follow their images."""
    images = sorted(coco["images"], key=lambda i: i["file_name"])
    new_id = {img["id"]: k for k, img in enumerate(images)}
    anns = sorted(coco.get("annotations", []), key=lambda a: (new_id[a["image_id"]], a["id"]))
    return {
        "categories": coco["categories"],
        "images": [{**{k: v for k, v in img.items() if k not in drop_image_keys}, "id": new_id[img["id"]]} for img in images],
        "annotations": [{**{k: v for k, v in a.items() if k not in drop_ann_keys and k != "id"},
                         "image_id": new_id[a["image_id"]]} for a in anns],
    }


def read(path: Path) -> dict:
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------------------------ cases


def cityscapes_tree(root: Path, frames: int) -> Path:
    import cv2

    trees.make_cityscapes(root)
    shutil.rmtree(root / "leftImg8bit/val")
    img = root / f"leftImg8bit/train/aachen/{trees.CITY_FRAME}_leftImg8bit.png"
    ids = trees.cityscapes_instance_png()
    big = cv2.resize(ids, (512, 256), interpolation=cv2.INTER_NEAREST)
    for i in range(1, frames):
        name = f"aachen_000001_{i:06d}"
        shutil.copy(img, img.with_name(f"{name}_leftImg8bit.png"))
        cv2.imwrite(str(root / f"gtFine/train/aachen/{name}_gtFine_instanceIds.png"), big)
    return root


def case_cityscapes(tmp: Path, quick: bool, nproc: int) -> tuple[dict, list[str]]:
    from det.core.convert.cityscapes import convert_cityscapes

    root = cityscapes_tree(tmp / "cityscapes", 8 if quick else 60)
    det_ms = timed(lambda: convert_cityscapes(root, tmp / "cs_det", nproc=nproc, force=True))
    row = {"case": f"cityscapes ({len(list((root / 'leftImg8bit/train/aachen').iterdir()))} frames, nproc {nproc})",
           "det_ms": det_ms}
    mm = load_script("cityscapes")
    if mm is None:
        return row, []
    out = tmp / "cs_mm" / "train.json"
    out.parent.mkdir(exist_ok=True)

    def peer():
        files = mm.collect_files(str(root / "leftImg8bit/train"), str(root / "gtFine/train"))
        mm.cvt_annotations(mm.collect_annotations(files, nproc=nproc), str(out))

    row.update(peer="mmdet cityscapes.py", peer_ms=timed(peer))
    row["ratio"] = row["peer_ms"] / det_ms
    row["same_output"] = canonical(read(tmp / "cs_det/instancesonly_filtered_gtFine_train.json")) == canonical(read(out))
    return row, []


def case_cityscapes_polygons(tmp: Path, quick: bool, nproc: int) -> tuple[dict, list[str]]:
    """Rasterising *_gtFine_polygons.json: det vs cityscapesscripts' createInstanceImage."""
    import numpy as np

    from det.core.convert.cityscapes import rasterize_polygons

    rng = np.random.default_rng(0)
    names = ["road", "car", "person", "rider", "cargroup", "persongroup", "sky", "bicycle", "truck",
             "license plate", "caravan", "building"]
    files = []
    for k in range(3 if quick else 20):
        objects = []
        for i in range(150):
            cx, cy = rng.uniform(0, 1024), rng.uniform(0, 512)
            pts = [[float(cx + rng.uniform(-80, 80)), float(cy + rng.uniform(-60, 60))] for _ in range(rng.integers(3, 12))]
            objects.append({"label": names[i % len(names)], "polygon": pts, **({"deleted": 1} if i % 37 == 0 else {})})
        path = tmp / f"f{k}_gtFine_polygons.json"
        path.write_text(json.dumps({"imgHeight": 512, "imgWidth": 1024, "objects": objects}))
        files.append(path)
    ours = []
    row = {"case": f"cityscapes polygons ({len(files)} files, 150 objects, 1024x512)",
           "det_ms": timed(lambda: ours.__setitem__(slice(None), [rasterize_polygons(str(f)) for f in files]))}
    from common import import_peer

    helpers = import_peer("cityscapesscripts.preparation.json2instanceImg")
    if helpers is None:
        return row, []
    from cityscapesscripts.helpers.annotation import Annotation

    refs = []

    def peer():
        refs.clear()
        for f in files:
            ann = Annotation()
            ann.fromJsonFile(str(f))
            refs.append(np.asarray(helpers.createInstanceImage(ann, "ids")).astype(np.int64))

    row.update(peer="cityscapesscripts json2instanceImg", peer_ms=timed(peer))
    row["ratio"] = row["peer_ms"] / row["det_ms"]
    row["same_output"] = all(np.array_equal(a, b) for a, b in zip(ours, refs))
    return row, []


def case_voc(tmp: Path, quick: bool, nproc: int) -> tuple[dict, list[str]]:
    from det.core.convert.voc import convert_voc

    devkit = trees.make_voc(tmp / "VOCdevkit")
    shutil.rmtree(devkit / "VOC2012")
    base = devkit / "VOC2007"
    n = 200 if quick else 3000
    ids = [f"{i:06d}" for i in range(10, 10 + n)]
    for k, image_id in enumerate(ids):
        objects = [(trees.VOC_OBJECTS["000001"][j % 3][0], 5 + j, 6 + j, 40 + j, 50 + j, int(j == 2)) for j in range(k % 5)]
        (base / "Annotations" / f"{image_id}.xml").write_text(trees.voc_xml(image_id, objects))
    (base / "ImageSets/Main/trainval.txt").write_text("".join(f"{i}\n" for i in ids))
    det_ms = timed(lambda: convert_voc(devkit, tmp / "voc_det", nproc=nproc, force=True))
    row = {"case": f"voc ({n} xml, all splits)", "det_ms": det_ms}
    mm = load_script("pascal_voc")
    if mm is None:
        return row, []
    (tmp / "voc_mm").mkdir(exist_ok=True)

    def peer():
        for split in ("train", "val", "trainval", "test"):
            mm.cvt_annotations(str(devkit), "2007", split, str(tmp / f"voc_mm/voc07_{split}.json"))

    row.update(peer="mmdet pascal_voc.py", peer_ms=timed(peer))
    row["ratio"] = row["peer_ms"] / det_ms
    # by design det also marks difficult boxes `ignore: 1` (MMDetection writes 0 and relies on iscrowd)
    row["same_output"] = all(
        canonical(read(tmp / f"voc_det/voc07_{s}.json"), drop_ann_keys=("ignore",))
        == canonical(read(tmp / f"voc_mm/voc07_{s}.json"), drop_ann_keys=("ignore",))
        for s in ("train", "val", "trainval", "test"))
    return row, ["voc: compared without the 'ignore' field (det sets it to 1 for difficult boxes)"]


def case_mot(tmp: Path, quick: bool, nproc: int) -> tuple[dict, list[str]]:
    from det.core.convert.mot import convert_mot

    root = trees.make_mot(tmp / "MOT17")
    det_ms = timed(lambda: convert_mot(root, tmp / "mot_det", split_train=True, force=True))
    row = {"case": "mot (3 videos, 4 subsets)", "det_ms": det_ms}
    mm = load_script("mot2coco")
    if mm is None:
        return row, []
    argv = sys.argv
    sys.argv = ["mot2coco", "-i", str(root), "-o", str(tmp / "mot_mm"), "--split-train"]
    try:
        row.update(peer="mmdet mot2coco.py", peer_ms=timed(mm.main))  # also rewrites gt_half-*.txt
    finally:
        sys.argv = argv
    row["ratio"] = row["peer_ms"] / det_ms
    same = True
    for subset in ("train", "test", "half-train", "half-val"):
        a, b = read(tmp / f"mot_det/{subset}_cocoformat.json"), read(tmp / f"mot_mm/{subset}_cocoformat.json")
        # MMDetection lists videos in directory order: compare per video name
        same &= sorted(json.dumps(v, sort_keys=True) for v in a["images"]) == \
            sorted(json.dumps(v, sort_keys=True) for v in b["images"]) or _same_modulo_video_order(a, b)
        same &= a["num_instances"] == b["num_instances"] and len(a["annotations"]) == len(b.get("annotations", []))
    row["same_output"] = bool(same)
    return row, ["mot: images and instance counts compared; ids may differ when the OS lists videos in another order"]


def _same_modulo_video_order(a: dict, b: dict) -> bool:
    key = lambda img: (img["file_name"], img["frame_id"], img["mot_frame_id"])  # noqa: E731
    return sorted(map(key, a["images"])) == sorted(map(key, b["images"]))


def case_crowdhuman(tmp: Path, quick: bool, nproc: int) -> tuple[dict, list[str]]:
    from det.core.convert.crowdhuman import convert_crowdhuman

    root = trees.make_crowdhuman(tmp / "crowdhuman")
    records = trees.CROWDHUMAN["train"] * (50 if quick else 1000)
    (root / "annotation_train.odgt").write_text("".join(json.dumps(r) + "\n" for r in records))
    det_ms = timed(lambda: convert_crowdhuman(root, tmp / "ch_det", nproc=nproc, force=True))
    row = {"case": f"crowdhuman ({len(records)} odgt lines)", "det_ms": det_ms}
    mm = load_script("crowdhuman2coco")
    if mm is None:
        return row, []

    def peer():
        for mode in ("train", "val"):
            mm.convert_crowdhuman(str(root), str(tmp / "ch_mm"), mode)

    row.update(peer="mmdet crowdhuman2coco.py", peer_ms=timed(peer))
    row["ratio"] = row["peer_ms"] / det_ms
    row["same_output"] = all(read(tmp / f"ch_det/crowdhuman_{m}.json") == read(tmp / f"ch_mm/crowdhuman_{m}.json")
                             for m in ("train", "val"))
    return row, []


def case_youtubevis(tmp: Path, quick: bool, nproc: int) -> tuple[dict, list[str]]:
    from det.core.convert.youtubevis import convert_youtubevis

    root = trees.make_youtubevis(tmp / "ytvis", "2021")
    det_ms = timed(lambda: convert_youtubevis(root, tmp / "yv_det", "2021", force=True))
    row = {"case": "youtubevis 2021", "det_ms": det_ms}
    mm = load_script("youtubevis2coco")
    if mm is None:
        return row, []

    def peer():
        for mode in ("train", "valid"):
            mm.convert_vis(str(root), str(tmp / "yv_mm"), "2021", mode)

    row.update(peer="mmdet youtubevis2coco.py", peer_ms=timed(peer))
    row["ratio"] = row["peer_ms"] / det_ms
    # MMDetection leaves 'annotations' out when a split has none; det writes an empty list
    row["same_output"] = all(read(tmp / f"yv_det/youtube_vis_2021_{m}.json")
                             == {"annotations": [], **read(tmp / f"yv_mm/youtube_vis_2021_{m}.json")}
                             for m in ("train", "valid"))
    return row, ["youtubevis: MMDetection omits 'annotations' for unlabelled splits, det writes []"]


def main() -> int:
    parser = arg_parser("det convert vs MMDetection's dataset converters")
    parser.add_argument("--nproc", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("DET_PROGRESS", "0")
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for case in (case_cityscapes, case_cityscapes_polygons, case_voc, case_mot, case_crowdhuman, case_youtubevis):
            sub = Path(tmp) / case.__name__
            sub.mkdir()
            row, case_notes = case(sub, args.quick, args.nproc)
            rows.append(row)
            notes += case_notes
    emit("det convert vs MMDetection converters", rows, notes, args.json)
    return 0 if all(r.get("same_output", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
