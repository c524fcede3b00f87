"""Out-of-range and non-finite option values are refused before any work (issue 16, kind
'validation before work')."""
from __future__ import annotations

import pytest

from tests.hostile.conftest import assert_user_error

CASES = [
    (("infer", "x.png", "--weights", "w.pt"), "--score-thr", ["5", "nan", "-0.1"]),
    (("infer", "x.png", "--weights", "w.pt"), "--workers", ["-1", "0"]),
    (("infer", "x.png", "--weights", "w.pt"), "--batch-size", ["0"]),
    (("confusion-matrix", "r.json", "--ann", "g.json"), "--nms-iou-thr", ["-3", "nan"]),
    (("confusion-matrix", "r.json", "--ann", "g.json"), "--score-thr", ["inf"]),
    (("test", "demo/rtmdet_tiny", "w.pt", "--tta"), "--tta-scales", ["-1", "0"]),
    (("fuse-results", "a.json", "--ann", "g.json"), "--fusion-iou-thr", ["1.5"]),
]


@pytest.mark.parametrize("args,option,value", [(a, o, v) for a, o, vs in CASES for v in vs])
def test_option_out_of_range(det_inproc, tmp_path, args, option, value):
    r = det_inproc(*args, option, value)
    assert_user_error(r, option, value)


def test_flops_shape_too_small(det_inproc):
    assert_user_error(det_inproc("flops", "demo/rtmdet_tiny", "--img-size", "7", "9"), "--img-size", "7")


@pytest.mark.parametrize("override,key", [
    ("train.optimizer.lr=abc", "train.optimizer.lr"), ("train.optimizer.lr=.nan", "train.optimizer.lr"),
    ("data.train.batch_size=0", "data.train.batch_size"), ("model.backbone.widen_factor=wide", "model.backbone.widen_factor"),
])
def test_preset_values_validate_and_train_agree(det_inproc, tmp_path, override, key):
    assert_user_error(det_inproc("config", "validate", "demo/rtmdet_tiny", "--set", override), key)
    r = det_inproc("train", "demo/rtmdet_tiny", "--set", override, "--work-dir", tmp_path / "wd")
    assert_user_error(r, key)
    assert not (tmp_path / "wd").exists()


def test_empty_preset(det_inproc, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert_user_error(det_inproc("config", "validate", empty), "preset is empty")
