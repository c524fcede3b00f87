"""`det convert coco-panoptic-semantic`: every category as its index in the JSON's category
order, unlabeled 255 (MMDetection's prepare_coco_semantic_annos_from_panoptic_annos.py)."""
from __future__ import annotations

import json

import cv2
import numpy as np

from tests.core.data.panoptic_fixtures import CAT, CROWD_CAT, DOG, GRASS, SKY, ids_image0, make_dataset


def test_converts_to_category_order_indices_with_255_unlabeled(tmp_path, det_inproc):
    ann = make_dataset(tmp_path)
    res = det_inproc("convert", "coco-panoptic-semantic", ann, "--json")
    assert res.returncode == 0, res.stderr
    row = json.loads(res.stdout)[0]
    assert row["images"] == 2 and row["classes"] == 4 and row["file"].endswith("panoptic_semseg_val")
    sem = cv2.imread(str(tmp_path / "panoptic_semseg_val" / "000.png"), cv2.IMREAD_UNCHANGED)
    ids = ids_image0()
    # file order of categories: sky (10) -> 0, dog (3) -> 1, cat (1) -> 2, grass (5) -> 3
    expected = np.full(ids.shape, 255, np.uint8)
    for seg_id, index in ((SKY, 0), (DOG, 1), (CAT, 2), (CROWD_CAT, 2), (GRASS, 3)):
        expected[ids == seg_id] = index
    assert sem.dtype == np.uint8 and sem.ndim == 2 and np.array_equal(sem, expected)
    again = det_inproc("convert", "coco-panoptic-semantic", ann)
    assert again.returncode == 2 and "000.png: already exists (use --force" in again.stderr
    assert det_inproc("convert", "coco-panoptic-semantic", ann, "--force").returncode == 0


def test_coco_root_layout_and_hostile_input(tmp_path, det_inproc):
    make_dataset(tmp_path / "annotations")
    (tmp_path / "annotations" / "panoptic_val.json").rename(tmp_path / "annotations" / "panoptic_val2017.json")
    (tmp_path / "annotations" / "panoptic_val").rename(tmp_path / "annotations" / "panoptic_val2017")
    res = det_inproc("convert", "coco-panoptic-semantic", tmp_path, "--out-dir", tmp_path / "x", "--json")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "x" / "001.png").is_file()
    (tmp_path / "annotations" / "panoptic_val2017" / "001.png").unlink()
    res = det_inproc("convert", "coco-panoptic-semantic", tmp_path, "--force")
    assert res.returncode == 2 and "annotations[1]: panoptic PNG" in res.stderr and "001.png not found" in res.stderr
    missing = det_inproc("convert", "coco-panoptic-semantic", tmp_path / "nope")
    assert missing.returncode == 2 and "nope: not found" in missing.stderr
