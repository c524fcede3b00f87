"""YOLOX and RTMDet-Ins through the CLI at tiny sizes: `det flops` on every bundled preset, then
`det train` (YOLOX crossing its last-epochs switch), `det test --out` (masks as COCO RLE) and
`det infer` (drawn images with mask overlays) on the demo presets."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.conftest import TINY_DEMO_OVERRIDES

REPO = Path(__file__).resolve().parents[2]
PRESETS = sorted(str(p.relative_to(REPO)) for p in [*(REPO / "presets" / "yolox").glob("*.yaml"),
                                                    *(REPO / "presets" / "rtmdet").glob("rtmdet-ins_*.yaml")])
# published sizes: parameters (M) from MMDetection's model zoo; YOLOX's MACs (G) at 640 x 640 are
# half the paper's FLOPs (its counter doubles MACs)
PARAMS = {"yolox_nano": 0.91, "yolox_tiny": 5.06, "yolox_s": 9.0, "yolox_m": 25.3, "yolox_l": 54.2, "yolox_x": 99.1,
          "rtmdet-ins_tiny": 5.6, "rtmdet-ins_s": 10.2, "rtmdet-ins_m": 27.6, "rtmdet-ins_l": 57.4,
          "rtmdet-ins_x": 102.7}
GMACS_640 = {"yolox_s": 26.8 / 2, "yolox_m": 73.8 / 2, "yolox_l": 155.6 / 2, "yolox_x": 281.9 / 2}


def test_the_issue_presets_are_bundled():
    names = {Path(p).name for p in PRESETS}
    assert {f"yolox_{s}_8xb8-300e_coco.yaml" for s in ("nano", "tiny", "s", "m", "l", "x")} <= names
    assert {f"rtmdet-ins_{s}_8xb32-300e_coco.yaml" for s in ("tiny", "s", "m", "l")} | \
        {"rtmdet-ins_x_8xb16-300e_coco.yaml"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_flops_of_every_preset_match_the_published_sizes(det_inproc, preset):
    r = det_inproc("flops", preset, "--shape", "64", "64", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    name = Path(preset).name.split("_8xb")[0]
    assert res["params"] / 1e6 == pytest.approx(PARAMS[name], rel=0.015)
    if name in GMACS_640:  # 64 x 64 is 1/100 of the area; the small maps lose a little at the borders
        assert res["macs"] * 100 / 1e9 == pytest.approx(GMACS_640[name], rel=0.03)


def _sets(*extra: str) -> list[str]:
    """The demo shrunk to 2 training images (one iteration per epoch) of 64 px, plus `extra`."""
    return [x for s in (*TINY_DEMO_OVERRIDES, "data.train.dataset.num_train=2", *extra) for x in ("--set", s)]


def _image_folder(root: Path) -> Path:
    root.mkdir()
    img = np.full((64, 80, 3), 40, np.uint8)
    cv2.circle(img, (30, 30), 14, (0, 200, 255), -1)
    cv2.imwrite(str(root / "a.png"), img)
    return root


def _train_and_test(det_inproc, tmp_path: Path, preset: str, *sets: str) -> tuple[Path, list[dict], str]:
    """Train the shrunk demo `preset`, then `det test` its last checkpoint: (work dir, log
    records, test stdout); the results file is tmp_path/r.json."""
    work = tmp_path / "w"
    r = det_inproc("train", preset, "--work-dir", work, "--device", "cpu", *_sets(*sets, "train.amp.enabled=false"))
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    r = det_inproc("test", work / "last.pt", "--out", tmp_path / "r.json", "--work-dir", tmp_path / "t", "--device",
                   "cpu", "--set", "model.test_cfg.score_thr=0.0")
    assert r.returncode == 0, r.stderr
    return work, records, r.stdout


def _infer(det_inproc, tmp_path: Path, work: Path) -> dict:
    """`det infer` of the last checkpoint on a one-image folder: that image's JSON record."""
    r = det_inproc("infer", _image_folder(tmp_path / "imgs"), "--weights", work / "last.pt", "--out-dir",
                   tmp_path / "o", "--score-thr", "0.0", "--device", "cpu", "--set", "model.test_cfg.score_thr=0.0")
    assert r.returncode == 0, r.stderr
    return json.loads((tmp_path / "o" / "preds" / "a.json").read_text())


@pytest.mark.slow
def test_yolox_demo_trains_through_the_switch_tests_and_infers(det_inproc, tmp_path):
    work, records, stdout = _train_and_test(det_inproc, tmp_path, "demo/yolox_tiny", "train.max_epochs=2",
                                            "train.switch_epoch=1")
    train = [rec for rec in records if "loss_obj" in rec]
    assert train and "loss_l1" not in train[0] and "loss_l1" in train[-1]  # L1 from the switch epoch on
    dets = json.loads((tmp_path / "r.json").read_text())
    assert "coco/bbox_mAP" in stdout and dets and {"image_id", "bbox", "score"} <= dets[0].keys()
    rec = _infer(det_inproc, tmp_path, work)
    assert (rec["height"], rec["width"]) == (64, 80) and len(rec["scores"]) > 0
    assert cv2.imread(str(tmp_path / "o" / "vis" / "a.jpg")).shape == (64, 80, 3)


@pytest.mark.slow
def test_rtmdet_ins_demo_trains_tests_with_rle_and_draws_masks(det_inproc, tmp_path):
    work, records, stdout = _train_and_test(det_inproc, tmp_path, "demo/rtmdet_ins_tiny")
    assert any("loss_mask" in rec for rec in records)
    assert "coco/segm_mAP" in stdout
    dets = json.loads((tmp_path / "r.json").read_text())
    assert dets and all({"segmentation", "bbox", "score"} <= d.keys() for d in dets)
    seg = dets[0]["segmentation"]
    assert mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()}).shape == tuple(seg["size"])
    rec = _infer(det_inproc, tmp_path, work)
    assert len(rec["masks"]) == len(rec["scores"]) > 0 and rec["masks"][0]["size"] == [64, 80]
    drawn = cv2.imread(str(tmp_path / "o" / "vis" / "a.jpg"))
    assert drawn.shape == (64, 80, 3)
