import json
from pathlib import Path

import cv2
import numpy as np

from det.core.config import preset_root
from det.core.vis import get_palette

SHAPES_PALETTE = ((220, 20, 60), (0, 130, 255), (0, 200, 80), (255, 170, 0), (160, 60, 230), (0, 210, 210))


def _preset(tmp_path: Path) -> Path:
    base = preset_root() / "_base_" / "data" / "shapes.yaml"
    p = tmp_path / "demo_like.yaml"
    p.write_text(f"""_base_: {base}
data:
  train:
    dataset: {{num_train: 4, num_val: 2, size: 96, seed: 3, min_object_size: 8, max_object_size: 48}}
    pipeline:
      - {{type: LoadImage}}
      - {{type: LoadAnnotations}}
      - {{type: Pack}}
  val:
    dataset: {{num_train: 4, num_val: 2, size: 96, seed: 3, min_object_size: 8, max_object_size: 48}}
""")
    return p


def test_browse_draws_boxes_in_class_colours(tmp_path, det_inproc, monkeypatch):
    run_det = det_inproc
    monkeypatch.setenv("DET_CACHE", str(tmp_path / "cache"))
    preset = _preset(tmp_path)
    res = run_det("browse", preset, "--out-dir", tmp_path / "out", "--limit", "3", "--grid", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert len(info["images"]) == 3 and Path(info["grid"]).is_file()
    ann = json.loads(next((tmp_path / "cache" / "synthetic").glob("shapes-*/instances_train.json")).read_text())
    checked = 0
    for k, path in enumerate(info["images"]):
        img = cv2.imread(path)
        assert img.shape == (96, 96, 3)
        image_id = ann["images"][k]["id"]
        for a in (a for a in ann["annotations"] if a["image_id"] == image_id):
            x, y, w, h = a["bbox"]
            r, g, b = SHAPES_PALETTE[a["category_id"] - 1]
            # left edge of the outline, below the label tag: the exact class colour (BGR)
            px = img[int(round(y + h * 0.75)), int(round(x))]
            checked += int(tuple(px) == (b, g, r))
    assert checked >= 3
    again = run_det("browse", preset, "--out-dir", tmp_path / "out", "--limit", "1")
    assert again.returncode == 2 and "already exists" in again.stderr


def test_browse_stats_and_show_error(tmp_path, det_inproc, monkeypatch):
    run_det = det_inproc
    monkeypatch.setenv("DET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DISPLAY", "")
    preset = _preset(tmp_path)
    res = run_det("browse", preset, "--split", "val", "--stats", "--json")
    assert res.returncode == 0, res.stderr
    stats = json.loads(res.stdout)
    ann = json.loads(next((tmp_path / "cache" / "synthetic").glob("shapes-*/instances_val.json")).read_text())
    assert stats["num_images"] == 2 and stats["num_instances"] == len(ann["annotations"])
    counts = {c["name"]: 0 for c in ann["categories"]}
    for a in ann["annotations"]:
        counts[ann["categories"][a["category_id"] - 1]["name"]] += 1
    assert {k: v["instances"] for k, v in stats["per_class"].items()} == counts
    widths = [a["bbox"][2] for a in ann["annotations"]]
    assert stats["box_width"]["max"] == max(widths) and stats["box_width"]["min"] == min(widths)
    raw = run_det("browse", preset, "--split", "val", "--raw", "--out-dir", tmp_path / "raw", "--limit", "5")
    assert raw.returncode == 0, raw.stderr
    files = sorted((tmp_path / "raw").glob("*.png"))
    assert len(files) == 2 and cv2.imread(str(files[0])).shape == (96, 96, 3)  # val has 2 images
    shown = run_det("browse", preset, "--show")
    assert shown.returncode == 2 and "--show needs a display" in shown.stderr
    bad = run_det("browse", preset, "--split", "tset", "--stats")
    assert bad.returncode == 2 and "split must be one of" in bad.stderr
    assert get_palette(6)  # default palette exists for datasets without their own


def test_browse_blends_masks(tmp_path, det_inproc, monkeypatch):
    from det.core.structures import polygons_to_bitmap

    monkeypatch.setenv("DET_CACHE", str(tmp_path / "cache"))
    preset = _preset(tmp_path)
    res = det_inproc("browse", preset, "--out-dir", tmp_path / "out", "--limit", "2", "--json",
                     "--set", "data.train.pipeline.1.with_mask=true")
    assert res.returncode == 0, res.stderr
    root = next((tmp_path / "cache" / "synthetic").glob("shapes-*"))
    ann = json.loads((root / "instances_train.json").read_text())
    good = total = 0
    for k, path in enumerate(json.loads(res.stdout)["images"]):
        drawn = cv2.imread(path).astype(float)
        raw = cv2.imread(str(root / ann["images"][k]["file_name"])).astype(float)
        for a in (a for a in ann["annotations"] if a["image_id"] == ann["images"][k]["id"]):
            m = cv2.erode(polygons_to_bitmap(a["segmentation"], 96, 96), np.ones((5, 5), np.uint8))
            ys, xs = np.nonzero(m)
            if not len(ys):
                continue
            i = int(np.argmax(ys))  # lowest interior pixel: away from the label tag
            y, x = ys[i], xs[i]
            r, g, b = SHAPES_PALETTE[a["category_id"] - 1]
            expected = raw[y, x] * 0.55 + np.array([b, g, r]) * 0.45
            total += 1
            good += int(np.abs(drawn[y, x] - expected).max() <= 2)
    assert total >= 2 and good >= total - 1  # an overlapping later mask may cover one probe


def test_browse_draws_panoptic_segments(tmp_path, det_inproc, monkeypatch):
    from det.core.data.datasets import SyntheticPanopticShapes

    monkeypatch.setenv("DET_CACHE", str(tmp_path / "cache"))
    ds_cfg = "{type: SyntheticPanopticShapes, num_train: 2, num_val: 1, size: 128}"
    preset = tmp_path / "pan.yaml"
    preset.write_text(f"data:\n  train:\n    dataset: {ds_cfg}\n    pipeline:\n      - {{type: LoadImage}}\n"
                      "      - {type: LoadPanopticAnnotations}\n      - {type: RandomFlip, prob: 1.0}\n      - {type: Pack}\n")
    for extra in ([], ["--raw"]):
        out = tmp_path / f"out{len(extra)}"
        res = det_inproc("browse", preset, "--out-dir", out, "--limit", "1", "--json", *extra)
        assert res.returncode == 0, res.stderr
    ds = SyntheticPanopticShapes("train", num_train=2, num_val=1, size=128,
                                 pipeline=[{"type": "LoadImage"}, {"type": "LoadPanopticAnnotations"}, {"type": "Pack"}])
    item = ds[0]
    img = item["inputs"].numpy().transpose(1, 2, 0)
    sem = item["sample"].gt_sem_seg.numpy()
    drawn = cv2.imread(str(next((tmp_path / "out1").glob("*.png"))))
    flipped = cv2.imread(str(next((tmp_path / "out0").glob("*.png"))))
    same = (flipped[:, ::-1] == drawn).all(-1)
    assert same.mean() > (flipped == drawn).all(-1).mean() + 0.2  # the pipeline's flip is drawn
    # stuff pixels far from labels and outlines: half image, half the class colour (BGR)
    label = int(sem[sem >= 6][0])
    r, g, b = ds.palette[label]
    region = (sem == label)
    inner = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    blend = (img.astype(np.float64) * 0.5 + np.array([b, g, r]) * 0.5)
    close = np.abs(drawn.astype(np.float64) - blend).max(-1) <= 1
    assert close[inner].mean() > 0.6  # the rest is under the class name tag
    # things are outlined in white
    masks = item["sample"].gt.masks.numpy()
    edge = masks[0] & ~cv2.erode(masks[0].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (drawn[edge].min(-1) > 200).mean() > 0.3
