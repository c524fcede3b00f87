"""Per-image AP equals pycocotools' COCOeval run on that image alone."""
from __future__ import annotations

import sys
from pathlib import Path

import contextlib
import io

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cocofixtures import random_coco  # noqa: E402
from pycocotools.cocoeval import COCOeval

from det.core.analysis.per_image import per_image_ap, rank
from det.core.evaluation.coco import load_coco_gt


@pytest.mark.parametrize("seed", [0, 1])
def test_per_image_ap_equals_single_image_cocoeval(seed):
    gt, dets = random_coco(seed, n_img=12)
    coco = load_coco_gt(gt)
    ours = per_image_ap(coco, dets)
    dt = coco.loadRes([dict(d) for d in dets]) if dets else None
    checked = 0
    for img_id in coco.getImgIds():
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(coco, dt, "bbox")
            ev.params.imgIds = [img_id]
            ev.evaluate(), ev.accumulate(), ev.summarize()
        if ev.stats[0] < 0:  # no ground truth in this image
            assert img_id not in ours
            continue
        assert ours[img_id] == pytest.approx(ev.stats[0], abs=1e-12), img_id
        checked += 1
    assert checked >= 6 and len({round(v, 6) for v in ours.values()}) > 3


def test_rank_best_and_worst():
    best, worst = rank({1: 0.5, 2: 0.9, 3: 0.1, 4: 0.5}, 2)
    assert best == [2, 1] and worst == [3, 1]
