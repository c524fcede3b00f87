"""det's Cityscapes instance AP vs cityscapesscripts' evalInstanceLevelSemanticLabeling (peer) on
random cases: instanceIds PNGs with instances of the 8 classes (some under 100 pixels, some
overlapping earlier ones), crowd regions, void labels and caravans; predicted masks jittered
from instances (right or wrong class), on crowds and void, anywhere, with tied scores. Both read
the same PNGs; cityscapesscripts gets the masks as PNG files with its text lists. Prints mAP and
AP@50 per case; exits 1 unless every difference is under 1e-12.

Usage: .venv/bin/python benchmarks/parity/cityscapes_metric.py [--cases 10]
  (the peer environment: ../peers-env, or DET_PEERS_ENV=/work/peers-env)
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import case_count, import_peer  # noqa: E402

from det.core.evaluation.cityscapes import cityscapes_evaluate  # noqa: E402

CLASS_IDS = (24, 25, 26, 27, 28, 31, 32, 33)
H, W = 64, 96


def _rect(rng, small=False) -> tuple[slice, slice]:
    h, w = (int(rng.integers(3, 9)), int(rng.integers(3, 9))) if small else (int(rng.integers(8, 30)), int(rng.integers(8, 40)))
    y, x = int(rng.integers(0, H - h)), int(rng.integers(0, W - w))
    return slice(y, y + h), slice(x, x + w)


def _jitter(rng, sl: tuple[slice, slice]) -> tuple[slice, slice]:
    d = rng.integers(-3, 4, 4)
    y0, y1 = int(np.clip(sl[0].start + d[0], 0, H - 1)), int(np.clip(sl[0].stop + d[1], 1, H))
    x0, x1 = int(np.clip(sl[1].start + d[2], 0, W - 1)), int(np.clip(sl[1].stop + d[3], 1, W))
    return slice(y0, max(y1, y0 + 1)), slice(x0, max(x1, x0 + 1))


def make_image(rng) -> tuple[np.ndarray, list[tuple[int, float, np.ndarray]]]:
    ids = np.full((H, W), 7, np.uint16)
    ids[_rect(rng)] = int(rng.choice([0, 4, 18, 29]))  # void
    preds, count = [], {}
    for _ in range(int(rng.integers(1, 8))):
        label, sl = int(rng.choice(CLASS_IDS)), _rect(rng, small=rng.random() < 0.2)
        crowd = rng.random() < 0.15
        count.setdefault(label, 0)
        ids[sl] = label if crowd else label * 1000 + count[label]
        count[label] += not crowd
        for _ in range(int(rng.integers(0, 3))):
            cls = label if rng.random() < 0.85 else int(rng.choice(CLASS_IDS))
            mask = np.zeros((H, W), bool)
            mask[_jitter(rng, sl)] = True
            preds.append((cls, 0.0, mask))
    if rng.random() < 0.5:
        ids[_rect(rng)] = 29000  # a caravan instance: not evaluated, not void
    for _ in range(int(rng.integers(0, 4))):
        mask = np.zeros((H, W), bool)
        mask[_rect(rng)] = True
        preds.append((int(rng.choice(CLASS_IDS)), 0.0, mask))
    return ids, [(c, float(rng.integers(1, 5)) / 5 if rng.random() < 0.3 else float(rng.random()), m) for c, _, m in preds]


def reference(cs, tmp: Path, images: list) -> dict:
    import cv2

    gts, lists = [], []
    for i, (ids, preds) in enumerate(images):
        gt = tmp / "gt" / f"img{i}_gtFine_instanceIds.png"
        gt.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(gt), ids)
        folder = tmp / "pred" / f"img{i}"
        folder.mkdir(parents=True)
        lines = []
        for k, (label, score, mask) in enumerate(preds):
            cv2.imwrite(str(folder / f"m{k}.png"), mask.astype(np.uint8) * 255)
            lines.append(f"img{i}/m{k}.png {label} {score!r}")
        (tmp / "pred" / f"img{i}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        gts.append(str(gt))
        lists.append(str(tmp / "pred" / f"img{i}.txt"))
    if not hasattr(np, "in1d"):  # removed in numpy 2.4; cityscapesscripts still calls it (same as isin, flattened)
        np.in1d = lambda a, b: np.isin(a, b).ravel()
    cs.writeDict2JSON = lambda data, path: None  # its debug dumps fail on numpy 2 integers; numbers unaffected
    args = cs.args
    args.predictionPath, args.gtInstancesFile = str(tmp / "pred"), str(tmp / "gtInstances.json")
    args.quiet, args.JSONOutput = True, False
    with contextlib.redirect_stdout(io.StringIO()):
        res = cs.evaluateImgLists(lists, gts, args)
    return {"cityscapes/mAP": res["averages"]["allAp"], "cityscapes/AP@50": res["averages"]["allAp50%"]}


def ours(tmp: Path, images: list) -> dict:
    from pycocotools import mask as mask_utils

    gt = {"images": [{"id": i, "file_name": f"img{i}.png", "width": W, "height": H,
                      "segm_file": f"img{i}_gtFine_labelIds.png"} for i in range(len(images))],
          "annotations": [], "categories": [{"id": c, "name": str(c)} for c in CLASS_IDS]}
    results = []
    for i, (_, preds) in enumerate(images):
        for label, score, mask in preds:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            results.append({"image_id": i, "category_id": label, "score": score,
                            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
    return cityscapes_evaluate(gt, results, tmp / "gt")


def main() -> None:
    cases = case_count(__doc__, 10)
    cs = import_peer("cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling")
    if cs is None:
        sys.exit("cityscapesscripts (peer) not available: nothing to compare")
    worst, here = 0.0, os.getcwd()
    for seed in range(cases):
        rng = np.random.default_rng(seed)
        images = [make_image(rng) for _ in range(int(rng.integers(2, 6)))]
        with tempfile.TemporaryDirectory() as tmp_dir:
            os.chdir(tmp_dir)  # cityscapesscripts writes matches.json into the working folder
            try:
                ref = reference(cs, Path(tmp_dir), images)
            except IndexError:
                print(f"case {seed}: cityscapesscripts fails (a class whose predictions are all ignored); skipped")
                continue
            finally:
                os.chdir(here)
            got = ours(Path(tmp_dir), images)
        diff = max(abs(ref[k] - got[k]) for k in ref)
        worst = max(worst, diff)
        print(f"case {seed}: {len(images)} images, {sum(len(p) for _, p in images)} masks: mAP {got['cityscapes/mAP']:.6f} "
              f"(cityscapesscripts {ref['cityscapes/mAP']:.6f}), AP@50 {got['cityscapes/AP@50']:.6f} "
              f"({ref['cityscapes/AP@50']:.6f}), |diff| {diff:.3g}")
    print(json.dumps({"largest_difference": worst, "cases": cases}))
    sys.exit(0 if worst < 1e-12 else 1)


if __name__ == "__main__":
    main()
