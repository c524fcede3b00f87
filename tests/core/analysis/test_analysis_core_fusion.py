"""fuse-results: the whole pipeline equals a per-image numpy reference of ensemble-boxes' WBF."""
from __future__ import annotations

import numpy as np
import pytest

from det.core.analysis.fusion import CONF_TYPES, fuse
from det.core.errors import DetError


def reference_wbf(boxes_list, scores_list, labels_list, weights, iou_thr, skip_thr, conf_type):
    """ensemble-boxes' weighted_boxes_fusion semantics, written out plainly (float64)."""
    weights = np.ones(len(boxes_list)) if weights is None else np.asarray(weights, float)
    by_label: dict[int, list] = {}
    for m, (bs, ss, ls) in enumerate(zip(boxes_list, scores_list, labels_list)):
        for b, s, lab in zip(bs, ss, ls):
            if s < skip_thr:
                continue
            x1, x2 = sorted((float(b[0]), float(b[2])))  # reversed corners are swapped, then clipped
            y1, y2 = sorted((float(b[1]), float(b[3])))
            x1, y1, x2, y2 = (min(max(v, 0.0), 1.0) for v in (x1, y1, x2, y2))
            if (x2 - x1) * (y2 - y1) == 0:
                continue
            by_label.setdefault(int(lab), []).append([int(lab), s * weights[m], weights[m], m, x1, y1, x2, y2])
    out = []
    for lab, rows in by_label.items():
        rows = np.array(rows)
        rows = rows[np.argsort(-rows[:, 1], kind="stable")]
        clusters: list[list] = []
        fused: list[np.ndarray] = []
        for r in rows:
            best, best_iou = -1, iou_thr
            for k, f in enumerate(fused):
                iw = max(min(f[6], r[6]) - max(f[4], r[4]), 0)
                ih = max(min(f[7], r[7]) - max(f[5], r[5]), 0)
                inter = iw * ih
                iou = inter / ((f[6] - f[4]) * (f[7] - f[5]) + (r[6] - r[4]) * (r[7] - r[5]) - inter)
                if iou > best_iou:
                    best, best_iou = k, iou
            if best < 0:
                clusters.append([r])
                fused.append(r.copy())
                continue
            clusters[best].append(r)
            c = np.array(clusters[best])
            f = np.zeros(8)
            f[0] = lab
            f[4:] = (c[:, 1:2] * c[:, 4:]).sum(0) / c[:, 1].sum()
            f[1] = c[:, 1].max() if conf_type == "max" else c[:, 1].mean()
            f[2] = c[:, 2].sum()
            fused[best] = f
        for c, f in zip(clusters, fused):
            c = np.array(c)
            if conf_type == "box_and_model_avg":
                _, first = np.unique(c[:, 3], return_index=True)
                f[1] = f[1] * len(c) / f[2] * c[first, 2].sum() / weights.sum()
            elif conf_type == "absent_model_aware_avg":
                present = np.zeros(len(weights), bool)
                present[np.unique(c[:, 3]).astype(int)] = True
                f[1] = f[1] * len(c) / (f[2] + weights[~present].sum())
            elif conf_type == "max":
                f[1] = f[1] / weights.max()
            else:
                f[1] = f[1] * min(len(weights), len(c)) / weights.sum()
            out.append(f)
    return out


def make_models(seed, n_img=15, n_models=3):
    rng = np.random.default_rng(seed)
    images = [{"id": 100 + i, "width": int(rng.integers(200, 500)), "height": int(rng.integers(150, 400))}
              for i in range(n_img)]
    preds = [[] for _ in range(n_models)]
    for img in images:
        for _ in range(rng.integers(0, 8)):  # objects every model sees, jittered
            w, h = rng.uniform(5, img["width"] / 2), rng.uniform(5, img["height"] / 2)
            x, y = rng.uniform(-10, img["width"] - w / 2), rng.uniform(-10, img["height"] - h / 2)  # some outside
            cat = int(rng.integers(1, 4))
            for m in range(n_models):
                if rng.random() < 0.8:
                    j = rng.normal(0, 3, 4)
                    preds[m].append({"image_id": img["id"], "category_id": cat if rng.random() < 0.9 else 3,
                                     "bbox": [x + j[0], y + j[1], w + j[2], h + j[3]], "score": float(rng.random())})
        for m in range(n_models):  # model-specific false positives
            for _ in range(rng.integers(0, 4)):
                preds[m].append({"image_id": img["id"], "category_id": int(rng.integers(1, 4)),
                                 "bbox": [rng.uniform(0, 100), rng.uniform(0, 100), rng.uniform(1, 80), rng.uniform(1, 80)],
                                 "score": float(rng.random())})
    gt = {"images": images, "annotations": [], "categories": [{"id": i, "name": str(i)} for i in (1, 2, 3)]}
    return gt, preds


@pytest.mark.parametrize("conf_type", CONF_TYPES)
def test_pipeline_equals_reference_per_image(conf_type):
    gt, preds = make_models(CONF_TYPES.index(conf_type))
    weights = [1.0, 2.0, 0.5]
    ours = fuse(preds, gt, weights, 0.55, 0.05, conf_type)
    for img in gt["images"]:
        W, H = img["width"], img["height"]
        bl, sl, ll = [], [], []
        for p in preds:
            mine = [d for d in p if d["image_id"] == img["id"]]
            bl.append([[d["bbox"][0] / W, d["bbox"][1] / H, (d["bbox"][0] + d["bbox"][2]) / W,
                        (d["bbox"][1] + d["bbox"][3]) / H] for d in mine])
            sl.append([d["score"] for d in mine])
            ll.append([d["category_id"] for d in mine])
        ref = reference_wbf(bl, sl, ll, weights, 0.55, 0.05, conf_type)
        got = [d for d in ours if d["image_id"] == img["id"]]
        assert len(got) == len(ref)
        # compared in ensemble-boxes' normalised space (it fuses in float32)
        ref_rows = sorted((f[0], f[1], f[4], f[5], f[6] - f[4], f[7] - f[5]) for f in ref)
        got_rows = sorted((d["category_id"], d["score"], d["bbox"][0] / W, d["bbox"][1] / H, d["bbox"][2] / W,
                           d["bbox"][3] / H) for d in got)
        np.testing.assert_allclose(np.array(got_rows).reshape(-1, 6), np.array(ref_rows).reshape(-1, 6), atol=1e-5)


def test_hand_case_two_models():
    gt = {"images": [{"id": 1, "width": 100, "height": 50}], "annotations": [], "categories": [{"id": 7, "name": "a"}]}
    a = [{"image_id": 1, "category_id": 7, "bbox": [10, 10, 20, 20], "score": 0.8}]
    b = [{"image_id": 1, "category_id": 7, "bbox": [12, 10, 20, 20], "score": 0.4}]
    (fused,) = fuse([a, b], gt, None, 0.55, 0.0, "avg")
    # score-weighted corners: x1 = (0.8 * 10 + 0.4 * 12) / 1.2; score = mean(0.8, 0.4) * min(2, 2) / 2
    assert fused["bbox"] == pytest.approx([(0.8 * 10 + 0.4 * 12) / 1.2, 10, 20, 20])
    assert fused["score"] == pytest.approx(0.6) and fused["category_id"] == 7 and fused["image_id"] == 1
    (fused,) = fuse([a, b], gt, [3, 1], 0.55, 0.0, "max")
    assert fused["score"] == pytest.approx(0.8 * 3 / 3)
    # boxes outside the image are clipped before fusion: [90, 40, 30, 30] -> [90, 40, 10, 10]
    (clip,) = fuse([[{"image_id": 1, "category_id": 7, "bbox": [90, 40, 30, 30], "score": 0.5}]], gt)
    assert clip["bbox"] == pytest.approx([90, 40, 10, 10])


def test_bad_options():
    gt, preds = make_models(0, n_img=2)
    with pytest.raises(DetError, match="--weights needs one value per results file"):
        fuse(preds, gt, [1.0], 0.5)
    with pytest.raises(DetError, match="did you mean 'max'"):
        fuse(preds, gt, conf_type="mx")
