"""Synthetic panoptic shapes: deterministic, PNG and JSON agree, things on stuff, loadable."""
from __future__ import annotations

import json

import numpy as np

from det.core.data.datasets import CocoPanopticDataset, SyntheticPanopticShapes
from det.core.data.panoptic_io import read_segment_ids
from det.core.data.synthetic.panoptic import STUFF_CLASSES, generate_panoptic_shapes


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_and_json_matches_pngs(tmp_path):
    generate_panoptic_shapes(tmp_path / "a", 3, 1, 64, seed=1, progress=False)
    generate_panoptic_shapes(tmp_path / "b", 3, 1, 64, seed=1, progress=False)
    generate_panoptic_shapes(tmp_path / "c", 3, 1, 64, seed=2, progress=False)
    fa, fb, fc = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert fa == fb and fa["panoptic_train/000000.png"] != fc["panoptic_train/000000.png"]
    assert {"panoptic_train.json", "panoptic_val.json", "train/000002.png", "val/000000.png", "panoptic_val/000000.png"} <= set(fa)
    doc = json.loads(fa["panoptic_train.json"])
    cats = {c["id"]: c for c in doc["categories"]}
    assert [c["name"] for c in doc["categories"] if not c["isthing"]] == list(STUFF_CLASSES)
    kinds = set()
    for ann in doc["annotations"]:
        ids = read_segment_ids(tmp_path / "a" / "panoptic_train" / ann["file_name"])
        listed = {s["id"]: s for s in ann["segments_info"]}
        assert set(np.unique(ids).tolist()) - {0} == set(listed)
        for sid, s in listed.items():
            mask = ids == sid
            ys, xs = np.nonzero(mask)
            assert s["area"] == mask.sum() and s["bbox"] == [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1]
            kinds.add(cats[s["category_id"]]["isthing"])
        # stuff covers the background: things + stuff + a little VOID fill the image
        assert (ids == 0).mean() < 0.1
    assert kinds == {0, 1}


def test_loads_through_the_panoptic_pipeline(tmp_path, monkeypatch):
    monkeypatch.setenv("DET_CACHE", str(tmp_path / "cache"))
    pipe = [{"type": "LoadImage"}, {"type": "LoadPanopticAnnotations"}, {"type": "Pack"}]
    ds = SyntheticPanopticShapes("val", num_train=2, num_val=2, size=64, pipeline=pipe)
    assert isinstance(ds, CocoPanopticDataset) and ds.num_things == 6 and ds.classes[6:] == STUFF_CLASSES
    sample = ds[0]["sample"]
    sem = sample.gt_sem_seg.numpy()
    assert sample.gt.masks.shape[0] == len(sample.gt.labels) >= 1
    assert (sem[(sem != 255)] < 9).all() and (sem >= 6).any() and (sem < 6).any()
