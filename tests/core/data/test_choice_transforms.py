"""RandomChoice, RandomChoiceResize and RandomCrop(absolute_range) as MMDetection's DETR-family
train pipelines use them; the shipped presets' pipelines build and run."""
from collections import Counter

import numpy as np
import pytest

from det.core.config import load_preset, preset_root
from det.core.config.validate import validate_preset
from det.core.data.transforms import RandomChoice, RandomChoiceResize, RandomCrop, build_pipeline, seed_all
from det.core.errors import ConfigError

MS = [[480, 1333], [512, 1333], [544, 1333], [576, 1333], [608, 1333], [640, 1333], [672, 1333], [704, 1333],
      [736, 1333], [768, 1333], [800, 1333]]


def record(h: int = 300, w: int = 400) -> dict:
    boxes = np.array([[10, 20, 110, 220], [200, 50, 390, 290]], np.float32)
    return {"img": np.zeros((h, w, 3), np.uint8), "img_shape": (h, w), "ori_shape": (h, w), "gt_bboxes": boxes,
            "gt_labels": np.array([1, 2], np.int64), "gt_ignore": np.zeros(2, bool), "scale_factor": (1.0, 1.0)}


def keep_ratio_hw(h: int, w: int, scale) -> tuple[int, int]:
    """By hand: factor = min(long / max(h, w), short / min(h, w)), sizes rounded half up."""
    f = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * f + 0.5), int(w * f + 0.5)


def test_random_choice_resize_draws_every_scale_and_scales_boxes():
    seed_all(0)
    t = RandomChoiceResize(scales=[[480, 1333], [800, 1333], [100, 4200]], keep_ratio=True)
    expected = {keep_ratio_hw(300, 400, s) for s in ([480, 1333], [800, 1333], [100, 4200])}
    assert expected == {(480, 640), (800, 1067), (100, 133)}
    seen = Counter()
    for _ in range(300):
        out = t(record())
        hw = out["img"].shape[:2]
        seen[hw] += 1
        sx, sy = hw[1] / 400, hw[0] / 300
        np.testing.assert_allclose(out["gt_bboxes"], record()["gt_bboxes"] * [sx, sy, sx, sy], rtol=1e-6)
        assert out["scale_factor"] == (sx, sy)
    assert set(seen) == expected and min(seen.values()) > 60


def test_random_choice_resize_without_keep_ratio():
    out = RandomChoiceResize(scales=[(64, 32)], keep_ratio=False)(record())
    assert out["img"].shape[:2] == (32, 64)


def test_random_choice_probabilities_and_sub_pipelines():
    seed_all(1)
    t = RandomChoice(transforms=[{"type": "Resize", "scale": [40, 30]},
                                 [{"type": "Resize", "scale": [80, 60]}, {"type": "Resize", "scale": [20, 10]}]],
                     prob=[0.25, 0.75])
    counts = Counter(t(record())["img"].shape[:2] for _ in range(2000))
    assert set(counts) == {(30, 40), (10, 20)}  # the second branch ran both of its resizes, in order
    assert abs(counts[(30, 40)] / 2000 - 0.25) < 0.04


def test_random_choice_uniform_by_default():
    seed_all(2)
    t = RandomChoice(transforms=[[{"type": "Resize", "scale": [40, 30]}], [{"type": "Resize", "scale": [20, 10]}]])
    counts = Counter(t(record())["img"].shape[:2] for _ in range(2000))
    assert abs(counts[(30, 40)] / 2000 - 0.5) < 0.04


def test_absolute_range_crop_matches_mmdetection_bounds():
    """MMDetection: crop_h drawn in [min(h, lo), min(h, hi)], crop_w in [min(w, lo), min(w, hi)]."""
    seed_all(3)
    t = RandomCrop(crop_size=(384, 600), crop_type="absolute_range", allow_negative_crop=True)
    hs, ws = set(), set()
    for _ in range(3000):
        h, w = t(record(500, 900))["img"].shape[:2]
        hs.add(h), ws.add(w)
    assert min(hs) == 384 and max(hs) == 500 and min(ws) == 384 and max(ws) == 600
    h, w = t(record(300, 350))["img"].shape[:2]
    assert (h, w) == (300, 350)  # both edges below the range: the whole image


def test_random_choice_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"pipeline\.0\.transforms\.1\.0\.type: unknown type 'Resise'"):
        build_pipeline([{"type": "RandomChoice", "transforms": [[{"type": "Resize", "scale": 8}], [{"type": "Resise"}]]}])
    with pytest.raises(ConfigError, match=r"pipeline\.0: .*prob must be 2 non-negative numbers summing to 1"):
        build_pipeline([{"type": "RandomChoice", "prob": [0.5, 0.6],
                         "transforms": [{"type": "Resize", "scale": 8}, {"type": "Resize", "scale": 9}]}])
    with pytest.raises(ConfigError, match=r"pipeline\.0: .*scales must be a non-empty list"):
        build_pipeline([{"type": "RandomChoiceResize", "scales": []}])


@pytest.mark.parametrize("preset,long2", [("detr/detr_r50_8xb2-150e_coco.yaml", 1333),
                                          ("deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.yaml", 4200),
                                          ("dino/dino-4scale_r50_8xb2-12e_coco.yaml", 4200)])
def test_detr_presets_use_mmdetection_train_pipeline(preset, long2):
    cfg = load_preset(preset_root() / preset)
    assert "data" in validate_preset(cfg)
    steps = cfg["data"]["train"]["pipeline"]
    assert [s["type"] for s in steps] == ["LoadImage", "LoadAnnotations", "RandomFlip", "RandomChoice", "Pack"]
    first, second = steps[3]["transforms"]
    assert first == [{"type": "RandomChoiceResize", "scales": MS, "keep_ratio": True}]
    assert second == [{"type": "RandomChoiceResize", "scales": [[400, long2], [500, long2], [600, long2]], "keep_ratio": True},
                      {"type": "RandomCrop", "crop_type": "absolute_range", "crop_size": [384, 600],
                       "allow_negative_crop": True},
                      {"type": "RandomChoiceResize", "scales": MS, "keep_ratio": True}]
    assert cfg["data"]["train"]["dataset"]["filter_empty_gt"] is (long2 == 1333)
    seed_all(4)
    choice = build_pipeline(steps[2:4])
    finals = {keep_ratio_hw(300, 400, s) for s in MS}
    sizes = [choice(record())["img"].shape[:2] for _ in range(40)]
    assert any(s in finals for s in sizes) and any(s not in finals for s in sizes)  # both branches ran
    assert all(max(s) <= 1333 and min(s) <= 800 and min(s) >= 480 for s in sizes)
