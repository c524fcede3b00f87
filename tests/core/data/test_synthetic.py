import json
import os
import threading

import numpy as np
import pytest

from det.core.data import build_dataset
from det.core.data.synthetic import SHAPE_CLASSES, cached_dataset_dir, generate_shapes
from det.core.structures import polygons_to_bitmap


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    generate_shapes(out, num_train=40, num_val=2, size=128, seed=7, progress=False)
    return out, json.loads((out / "instances_train.json").read_text())


def test_shapes_content(shapes):
    out, doc = shapes
    anns = doc["annotations"]
    assert [c["name"] for c in doc["categories"]] == list(SHAPE_CLASSES) and len(SHAPE_CLASSES) >= 5
    assert {a["category_id"] for a in anns} == set(range(1, 7))
    sides = []
    for a in anns:
        x, y, w, h = a["bbox"]
        bm = polygons_to_bitmap(a["segmentation"], 128, 128)
        ys, xs = np.nonzero(bm)
        # the box is the extent of the polygon mask and the area its pixel count
        np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], [x, y, x + w, y + h], atol=1)
        assert a["area"] == pytest.approx(bm.sum(), abs=1)
        sides.append(max(w, h))
    assert min(sides) < 12 and max(sides) > 45  # ~8 px up to about half the image
    # occlusion: some boxes of the same image overlap
    by_img = {}
    for a in anns:
        by_img.setdefault(a["image_id"], []).append(a["bbox"])
    overlaps = sum(1 for boxes in by_img.values() for i, p in enumerate(boxes) for q in boxes[i + 1:]
                   if min(p[0] + p[2], q[0] + q[2]) > max(p[0], q[0]) and min(p[1] + p[3], q[1] + q[3]) > max(p[1], q[1]))
    assert overlaps > 0


def test_same_seed_byte_identical(tmp_path, shapes):
    a = generate_shapes(tmp_path / "a", 3, 1, 64, seed=1, progress=False)
    b = generate_shapes(tmp_path / "b", 3, 1, 64, seed=1, progress=False)
    for split in ("train", "val"):
        assert a[split].read_bytes() == b[split].read_bytes()
    for name in ("train/000000.png", "train/000002.png", "val/000000.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_synthetic_dataset_generates_once_into_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DET_CACHE", str(tmp_path))
    cfg = {"type": "SyntheticShapes", "split": "train", "num_train": 4, "num_val": 2, "size": 64, "seed": 2}
    ds = build_dataset(cfg)
    root = tmp_path / "synthetic" / "shapes-v1-n4-v2-s64-seed2"
    assert (root / "instances_train.json").is_file() and (root / "DONE").is_file()
    stamp = os.stat(root / "instances_train.json").st_mtime_ns
    val = build_dataset({**cfg, "split": "val", "test_mode": True})
    assert len(val) == 2 and os.stat(root / "instances_train.json").st_mtime_ns == stamp
    assert ds.classes == SHAPE_CLASSES and ds.cat_ids == [1, 2, 3, 4, 5, 6] and len(ds.palette) == 6
    test = build_dataset({**cfg, "split": "test", "test_mode": True})
    assert test.coco_gt()["images"] == val.coco_gt()["images"]
    assert not [p for p in (tmp_path / "synthetic").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_cache_race_keeps_one_complete_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("DET_CACHE", str(tmp_path))
    barrier = threading.Barrier(2)
    calls = []

    def generate(folder):
        calls.append(folder)
        (folder / "data.txt").write_text("same")
        barrier.wait(timeout=10)  # both generators finish before either renames

    results = []
    threads = [threading.Thread(target=lambda: results.append(cached_dataset_dir("race", generate))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 2 and len(results) == 2 and results[0] == results[1]
    assert (results[0] / "data.txt").read_text() == "same" and (results[0] / "DONE").is_file()
    assert sorted(p.name for p in (tmp_path / "synthetic").iterdir()) == ["race"]


def test_object_size_range_bounds_shapes_and_names_the_cache(tmp_path, monkeypatch):
    generate_shapes(tmp_path / "big", 30, 0, 128, seed=3, progress=False, min_object_size=40, max_object_size=64)
    doc = json.loads((tmp_path / "big" / "instances_train.json").read_text())
    sides = [max(a["bbox"][2], a["bbox"][3]) for a in doc["annotations"]]
    # a box side is at most the bounding-circle diameter (occlusion only shrinks it)
    assert max(sides) <= 64 + 1 and np.median(sides) > 30
    assert doc["info"]["min_object_size"] == 40 and doc["info"]["max_object_size"] == 64
    with pytest.raises(ValueError, match="min_object_size"):
        generate_shapes(tmp_path / "bad", 1, 0, 64, progress=False, min_object_size=50, max_object_size=40)
    monkeypatch.setenv("DET_CACHE", str(tmp_path / "cache"))
    build_dataset({"type": "SyntheticShapes", "num_train": 2, "num_val": 1, "size": 64, "seed": 0, "min_object_size": 16})
    assert (tmp_path / "cache" / "synthetic" / "shapes-v1-n2-v1-s64-seed0-obj16-32" / "DONE").is_file()
