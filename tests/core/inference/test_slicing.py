"""Sliced inference: tiling geometry and merging, with a deterministic fake detector that finds
coloured rectangles by their pixels (so tile borders cut objects exactly as they cut images)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from det.core.errors import DetError
from det.core.inference.prediction import Prediction
from det.core.inference.slicing import slice_predict, tile_windows

COLOURS = [(0, 0, 255), (0, 255, 0)]  # BGR per class


def fake_detect(images, max_side=256, with_masks=False):
    """Connected components per class colour; images larger than `max_side` are first
    downscaled (like the test pipeline does), so small objects vanish there."""
    out = []
    for img in images:
        h, w = img.shape[:2]
        s = min(1.0, max_side / max(h, w))
        small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_NEAREST) if s < 1 else img
        boxes, labels, masks = [], [], []
        for label, colour in enumerate(COLOURS):
            hit = np.all(small == np.array(colour, np.uint8), axis=2).astype(np.uint8)
            n, comp, stats, _ = cv2.connectedComponentsWithStats(hit, connectivity=4)
            for k in range(1, n):
                x, y, bw, bh, area = stats[k]
                if area < 6:
                    continue
                boxes.append([x / s, y / s, (x + bw) / s, (y + bh) / s])
                labels.append(label)
                if with_masks:
                    m = cv2.resize((comp == k).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) if s < 1 else (comp == k)
                    masks.append(m.astype(bool))
        n = len(boxes)
        out.append(Prediction(img_path="", height=h, width=w, bboxes=np.array(boxes, np.float32).reshape(n, 4),
                              scores=np.linspace(0.9, 0.8, n).astype(np.float32), labels=np.array(labels, np.int64),
                              class_names=[str(v) for v in labels],
                              masks=np.array(masks, bool).reshape(n, h, w) if with_masks else None))
    return out


def scene():
    """1000 x 800 image; rectangles straddling the borders of 256-px tiles at overlap 0.25
    (step 192: tile edges at x/y = 192, 256, 384, 448, ...), small ones invisible at 256 px."""
    img = np.zeros((800, 1000, 3), np.uint8)
    gt = [  # x0, y0, x1, y1, label
        (230, 40, 280, 90, 0),     # crosses x=256 (and 192 is left of it): whole in tile 2
        (420, 230, 470, 270, 1),   # crosses x=448 and y=256
        (600, 500, 608, 508, 0),   # small: lost when the whole image is downscaled
        (150, 420, 330, 560, 1),   # wider than the overlap: cut in every tile
        (760, 700, 900, 790, 0),   # touches the image's bottom edge (not a tile cut)
    ]
    for x0, y0, x1, y1, label in gt:
        img[y0:y1, x0:x1] = COLOURS[label]
    return img, np.array([g[:4] for g in gt], np.float32), np.array([g[4] for g in gt])


def _iou(a, b):
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_tile_windows_cover_and_overlap():
    wins = tile_windows(800, 1000, 256, 0.25)
    xs = sorted({w[0] for w in wins})
    assert xs == [0, 192, 384, 576, 744] and sorted({w[1] for w in wins}) == [0, 192, 384, 544]
    assert all(x1 - x0 == 256 and y1 - y0 == 256 for x0, y0, x1, y1 in wins)
    cover = np.zeros((800, 1000), int)
    for x0, y0, x1, y1 in wins:
        cover[y0:y1, x0:x1] += 1
    assert cover.min() >= 1
    assert tile_windows(100, 80, 256, 0.2) == [(0, 0, 80, 100)]
    with pytest.raises(DetError, match="--overlap"):
        tile_windows(10, 10, 4, 1.0)


@pytest.mark.parametrize("merge", ["nms", "wbf"])
@pytest.mark.parametrize("full", [True, False])
def test_objects_cut_by_tiles_found_once(merge, full):
    img, gt, gt_labels = scene()
    pred = slice_predict(img, fake_detect, size=256, overlap=0.25, merge=merge, merge_iou=0.5, full=full,
                         class_names=["red", "green"])
    assert len(pred) == len(gt), pred.bboxes
    iou = _iou(pred.bboxes, gt)
    match = iou.argmax(0)
    assert sorted(match.tolist()) == list(range(len(gt)))  # one prediction per object
    assert (iou.max(0) > 0.9).all(), iou.max(0)
    assert (pred.labels[match] == gt_labels).all()
    assert pred.class_names == [["red", "green"][i] for i in pred.labels]


def test_plain_nms_without_cut_resolution_keeps_fragments():
    img, gt, _ = scene()
    pred = slice_predict(img, fake_detect, size=256, overlap=0.25, merge="nms", contain_thr=1.01, full=True)
    assert len(pred) > len(gt)  # the problem the cut-box step solves


def test_full_image_alone_misses_the_small_object():
    img, gt, _ = scene()
    whole = fake_detect([img])[0]
    assert len(whole) == len(gt) - 1


def test_masks_pasted_into_image_coordinates():
    img, gt, _ = scene()
    pred = slice_predict(img, lambda ims: fake_detect(ims, with_masks=True), size=256, overlap=0.25, full=False)
    assert pred.masks is not None and pred.masks.shape == (len(gt), 800, 1000)
    for box, mask in zip(pred.bboxes, pred.masks):
        x0, y0, x1, y1 = np.round(box).astype(int)
        expect = np.zeros((800, 1000), bool)
        expect[y0:y1, x0:x1] = True
        assert (mask == expect).all()


def test_unknown_merge_method():
    with pytest.raises(DetError, match="--merge"):
        slice_predict(np.zeros((10, 10, 3), np.uint8), fake_detect, size=4, merge="mean")
