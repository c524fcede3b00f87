import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from det.core.data.transforms import (
    Expand, FilterAnnotations, MinIoURandomCrop, MixUp, Mosaic, Pack, Pad, PhotoMetricDistortion, RandomAffine,
    RandomCrop, RandomFlip, RandomResize, Resize, YOLOXHSVRandomAug, build_pipeline, seed_all,
)
from det.core.data.transforms.rng import rng
from det.core.errors import ConfigError
from det.core.structures import BitmapMasks


def make_record(seed: int, h: int = 64, w: int = 80, n: int = 4) -> dict:
    """An image with n filled ellipses; masks are the ellipses, boxes their exact extents."""
    r = np.random.default_rng(seed)
    img = r.integers(0, 255, (h, w, 3), dtype=np.uint8)
    masks = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        cx, cy = r.uniform(0, w), r.uniform(0, h)
        ax, ay = r.uniform(2, w / 3), r.uniform(2, h / 3)
        cv2.ellipse(masks[i], (int(cx), int(cy)), (int(ax), int(ay)), float(r.uniform(0, 180)), 0, 360, 1, -1)
    bm = BitmapMasks(masks, h, w)
    keep = bm.areas > 0
    bm = bm[keep]
    k = len(bm)
    return {"img": img, "img_shape": (h, w), "ori_shape": (h, w), "img_path": "x.png", "img_id": seed,
            "gt_bboxes": bm.get_bboxes(), "gt_labels": r.integers(0, 5, k).astype(np.int64),
            "gt_ignore": r.random(k) < 0.2, "gt_masks": bm, "scale_factor": (1.0, 1.0), "flip_direction": None}


def check(res: dict, tol: float = 1.0) -> None:
    """Boxes inside the image, fields consistent, each mask's box within `tol` px of its box."""
    h, w = res["img"].shape[:2]
    b = res["gt_bboxes"]
    n = len(b)
    assert b.dtype == np.float32 and b.shape == (n, 4)
    assert len(res["gt_labels"]) == n and len(res["gt_ignore"]) == n and len(res["gt_masks"]) == n
    assert res["gt_labels"].dtype == np.int64 and res["gt_ignore"].dtype == bool
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
    assert (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()
    assert (res["gt_masks"].height, res["gt_masks"].width) == (h, w)
    mb = res["gt_masks"].get_bboxes()
    nonempty = res["gt_masks"].areas > 0
    np.testing.assert_allclose(mb[nonempty], b[nonempty], atol=tol + 1e-4)


GEOMETRIC = {
    "Resize": lambda: Resize(scale=(50, 37), keep_ratio=True),
    "ResizeNoRatio": lambda: Resize(scale=(97, 41)),
    "RandomResize": lambda: RandomResize(scale=(100, 100), ratio_range=(0.3, 2.0)),
    "RandomFlipH": lambda: RandomFlip(prob=1.0),
    "RandomFlipAny": lambda: RandomFlip(prob=0.9, direction=["horizontal", "vertical", "diagonal"]),
    "RandomCrop": lambda: RandomCrop(crop_size=(40, 30), allow_negative_crop=True),
    "RandomCropRel": lambda: RandomCrop(crop_size=(0.5, 0.7), crop_type="relative_range", allow_negative_crop=True),
    "Pad": lambda: Pad(size_divisor=32),
    "RandomAffine": lambda: RandomAffine(max_rotate_degree=30, max_shear_degree=5),
    "MinIoURandomCrop": lambda: MinIoURandomCrop(),
    "Expand": lambda: Expand(prob=1.0, ratio_range=(1, 3)),
}


@pytest.mark.parametrize("name", sorted(GEOMETRIC))
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), h=st.integers(20, 90), w=st.integers(20, 90))
def test_geometric_transforms_keep_boxes_masks_consistent(seed, name, h, w):
    seed_all(seed)
    t = GEOMETRIC[name]()
    rec = make_record(seed, h, w)
    original = rec["img"].copy()
    out = t(dict(rec))
    assert (rec["img"] == original).all()  # the input image is never modified in place
    if out is not None:
        check(out)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), direction=st.sampled_from(["horizontal", "vertical", "diagonal"]))
def test_double_flip_is_identity(seed, direction):
    rec = make_record(seed)
    t = RandomFlip(prob=1.0, direction=direction)
    twice = t(t(dict(rec)))
    assert np.array_equal(twice["img"], rec["img"])
    np.testing.assert_allclose(twice["gt_bboxes"], rec["gt_bboxes"])
    assert np.array_equal(twice["gt_masks"].masks, rec["gt_masks"].masks)
    assert twice["flip_direction"] is None
    np.testing.assert_allclose(twice["homography_matrix"], np.eye(3))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), use_masks=st.booleans())
def test_mosaic_and_mixup_give_valid_boxes(seed, use_masks):
    seed_all(seed)
    mosaic = Mosaic(img_scale=(64, 48), max_cached_images=6, pad_val=114)
    mixup = MixUp(img_scale=(64, 48), max_cached_images=6)
    outs = []
    for i in range(8):
        rec = make_record(seed * 10 + i, h=40 + 5 * i, w=70 - 3 * i)
        if not use_masks:
            rec.pop("gt_masks")
        outs.append(mixup(mosaic(rec)))
    last = outs[-1]
    assert last["img"].shape == (96, 128, 3)  # mosaic canvas 2h x 2w
    if use_masks:
        check(last)
    else:
        b = last["gt_bboxes"]
        assert ((b[:, 2] - b[:, 0]) > 0).all() and ((b[:, 3] - b[:, 1]) > 0).all()
        assert (b >= 0).all() and (b[:, [0, 2]] <= 128).all() and (b[:, [1, 3]] <= 96).all()
        assert len(last["gt_labels"]) == len(b) == len(last["gt_ignore"])


def test_mosaic_places_four_images_by_hand():
    seed_all(0)
    m = Mosaic(img_scale=(20, 10), center_ratio_range=(1.0, 1.0), max_cached_images=4, prob=1.0, use_cache=False)
    colours = [10, 60, 110, 160]

    class Four:
        def __len__(self):
            return 4

        def get_data_info(self, i):
            return {"img": np.full((10, 20, 3), colours[i], np.uint8), "gt_bboxes": np.array([[0, 0, 20, 10]], np.float32),
                    "gt_labels": np.array([i]), "gt_ignore": np.array([False])}

    m.bind_dataset(Four(), lambda x: x)
    out = m(Four().get_data_info(0))
    # centre (20, 10): the record itself fills the top-left quadrant
    assert out["img"].shape == (20, 40, 3) and (out["img"][:10, :20] == 10).all()
    assert len(out["gt_bboxes"]) == 4
    assert [0, 0, 20, 10] in out["gt_bboxes"].tolist() and [20, 10, 40, 20] in out["gt_bboxes"].tolist()


def test_resize_pad_by_hand():
    rec = {"img": np.zeros((50, 100, 3), np.uint8), "gt_bboxes": np.array([[10, 10, 50, 40]], np.float32)}
    out = Resize(scale=(64, 64), keep_ratio=True)(rec)
    assert out["img"].shape == (32, 64, 3) and out["scale_factor"] == (0.64, 0.64)
    np.testing.assert_allclose(out["gt_bboxes"], [[6.4, 6.4, 32, 25.6]], rtol=1e-6)
    out = Pad(size_divisor=24, pad_val={"img": 114})(out)
    assert out["img"].shape == (48, 72, 3) and out["pad_shape"] == (48, 72) and out["img_shape"] == (32, 64)
    assert (out["img"][40:, :] == 114).all() and (out["img"][:32, :64] == 0).all()
    # the recorded homography maps original corners to the output
    np.testing.assert_allclose(out["homography_matrix"] @ [100, 50, 1], [64, 32, 1])


def test_min_iou_crop_respects_iou():
    for seed in range(20):
        seed_all(seed)
        rec = make_record(seed, 80, 80)
        before = len(rec["gt_bboxes"])
        out = MinIoURandomCrop(min_ious=(0.3,))(dict(rec))
        if out["img"].shape[:2] != (80, 80):
            assert 0 < len(out["gt_bboxes"]) <= before
        check(out)


def test_filter_annotations():
    rec = {"gt_bboxes": np.array([[0, 0, 5, 5], [0, 0, 0.5, 9], [1, 1, 3, 1.5]], np.float32),
           "gt_labels": np.array([1, 2, 3]), "gt_ignore": np.zeros(3, bool)}
    out = FilterAnnotations(min_gt_bbox_wh=(1, 1))(dict(rec))
    assert out["gt_labels"].tolist() == [1]
    assert FilterAnnotations(min_gt_bbox_wh=(10, 10), keep_empty=True)(dict(rec)) is None
    assert len(FilterAnnotations(min_gt_bbox_wh=(10, 10), keep_empty=False)(dict(rec))["gt_bboxes"]) == 0


def test_yolox_hsv_matches_int16_reference():
    img = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for seed in range(5):
        seed_all(seed)
        out = YOLOXHSVRandomAug()({"img": img})["img"]
        # reference: the same random draws, direct int16 arithmetic on the HSV planes
        seed_all(seed)
        gains = rng().uniform(-1, 1, 3) * np.array([5, 30, 30])
        gains = (gains * rng().integers(0, 2, 3)).astype(np.int16)
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + gains[0]) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] + gains[1], 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] + gains[2], 0, 255)
        ref = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR) if gains.any() else img  # all-zero: no-op
        assert np.array_equal(out, ref)


def test_photometric_distortion_output():
    img = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    changed = 0
    for seed in range(6):
        seed_all(seed)
        out = PhotoMetricDistortion()({"img": img})["img"]
        assert out.dtype == np.uint8 and out.shape == img.shape
        changed += int(not np.array_equal(out, img))
    assert changed >= 4


def test_pack_and_pipeline_reproducible():
    pipe_cfg = [{"type": "RandomResize", "scale": [64, 64], "ratio_range": [0.5, 1.5]},
                {"type": "RandomCrop", "crop_size": [40, 40], "allow_negative_crop": True},
                {"type": "YOLOXHSVRandomAug"}, {"type": "RandomFlip", "prob": 0.5},
                {"type": "Pad", "size": [48, 48]}, {"type": "PackDetInputs"}]

    def run(seed):
        seed_all(seed)
        pipe = build_pipeline(pipe_cfg)
        return [pipe(make_record(i)) for i in range(6)]

    a, b, c = run(3), run(3), run(4)
    for x, y in zip(a, b):
        assert x["inputs"].dtype.is_floating_point is False and x["inputs"].shape == (3, 48, 48)
        assert (x["inputs"] == y["inputs"]).all()
        assert (x["sample"].gt.bboxes == y["sample"].gt.bboxes).all()
        assert x["sample"].gt.masks.dtype.is_floating_point is False
    assert any(not (x["inputs"] == z["inputs"]).all() for x, z in zip(a, c))
    s = a[0]["sample"]
    assert s.gt.bboxes.dtype.__str__() == "torch.float32" and str(s.gt.labels.dtype) == "torch.int64"
    assert str(s.gt.ignore.dtype) == "torch.bool" and s.pad_shape == (48, 48)


def test_pipeline_config_errors():
    with pytest.raises(ConfigError, match=r"pipeline.1: .*direction must be"):
        build_pipeline([{"type": "LoadImage"}, {"type": "RandomFlip", "direction": "sideways"}])
    with pytest.raises(ConfigError, match=r"pipeline.0.scael: unknown key for Resize; did you mean 'scale'"):
        build_pipeline([{"type": "Resize", "scael": [1, 2]}])
    assert isinstance(build_pipeline([{"type": "Pack"}]).transforms[0], Pack)


def test_records_map_predictions_back():
    """Boxes after Resize + flip + Pad return to the original image through the recorded
    scale_factor/flip_direction and, equally, through the inverse homography."""
    rec = make_record(3, 60, 90)
    rec.pop("gt_masks")
    orig = rec["gt_bboxes"].copy()
    out = build_pipeline([{"type": "Resize", "scale": [64, 64], "keep_ratio": True},
                          {"type": "RandomFlip", "prob": 1.0}, {"type": "Pad", "size_divisor": 32}])(rec)
    b = out["gt_bboxes"].astype(np.float64)
    h, w = out["img_shape"]
    unflipped = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
    sx, sy = out["scale_factor"]
    np.testing.assert_allclose(unflipped / [sx, sy, sx, sy], orig, atol=1e-3)
    inv = np.linalg.inv(out["homography_matrix"])
    corners = np.stack([b[:, [0, 1]], b[:, [2, 3]]], 1) @ inv[:2, :2].T + inv[:2, 2]
    back = np.concatenate([corners.min(1), corners.max(1)], 1)
    np.testing.assert_allclose(back, orig, atol=1e-3)
    assert out["flip_direction"] == "horizontal" and out["pad_shape"] == (64, 64)
