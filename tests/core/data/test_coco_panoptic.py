"""CocoPanopticDataset + LoadPanopticAnnotations on a handmade dataset (raw RGB PNGs)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from det.core.data.datasets import DATASETS, CocoPanopticDataset
from det.core.errors import DataError
from tests.core.data.panoptic_fixtures import CAT, CROWD_CAT, DOG, GRASS, SKY, ids_image0, make_dataset, write_rgb_png

LOAD = [{"type": "LoadImage"}, {"type": "LoadPanopticAnnotations"}, {"type": "Pack"}]


def _ds(root, **kw):
    return CocoPanopticDataset(str(make_dataset(root)), data_prefix={"img": str(root / "val")}, **kw)


def test_labels_put_things_first_and_records_hold_segments(tmp_path):
    ds = _ds(tmp_path, test_mode=True)
    assert DATASETS["CocoPanopticDataset"] is CocoPanopticDataset
    assert ds.classes == ("cat", "dog", "grass", "sky") and ds.num_things == 2 and ds.cat_ids == [1, 3, 5, 10]
    rec = ds.data_list[0]
    by_id = {s["id"]: s for s in rec["segments_info"]}
    assert by_id[CAT]["category"] == 0 and by_id[DOG]["category"] == 1 and by_id[SKY]["category"] == 3
    assert by_id[CROWD_CAT]["iscrowd"] == 1 and not by_id[GRASS]["is_thing"]
    inst = {i["segment_id"]: i for i in rec["instances"]}
    assert set(inst) == {CAT, DOG, CROWD_CAT} and inst[CROWD_CAT]["ignore_flag"] and not inst[CAT]["ignore_flag"]


def test_load_decodes_rgb_ids_into_masks_boxes_and_semantic_map(tmp_path):
    ds = _ds(tmp_path, test_mode=True, pipeline=LOAD)
    sample = ds[0]["sample"]
    ids = ids_image0()
    order = [s["id"] for s in ds.data_list[0]["segments_info"] if s["is_thing"]]
    masks = sample.gt.masks.numpy()
    for k, seg_id in enumerate(order):
        assert np.array_equal(masks[k], ids == seg_id)
    cat_k = order.index(CAT)
    assert sample.gt.bboxes[cat_k].tolist() == [1.0, 1.0, 4.0, 3.0]  # x1, y1, x2, y2 of rows 1-2, cols 1-3
    assert sample.gt.labels.tolist() == [0 if s in (CAT, CROWD_CAT) else 1 for s in order]
    assert sample.gt.ignore.tolist() == [s == CROWD_CAT for s in order]
    expected = np.full(ids.shape, 255)
    for seg_id, label in ((CAT, 0), (CROWD_CAT, 0), (DOG, 1), (GRASS, 2), (SKY, 3)):
        expected[ids == seg_id] = label
    assert np.array_equal(sample.gt_sem_seg.numpy(), expected)


def test_semantic_map_follows_resize_flip_and_pad(tmp_path):
    pipe = [LOAD[0], LOAD[1], {"type": "Resize", "scale": [16, 12]}, {"type": "RandomFlip", "prob": 1.0},
            {"type": "Pad", "size": [20, 16]}, {"type": "Pack"}]
    sample = _ds(tmp_path, test_mode=True, pipeline=pipe)[0]["sample"]
    sem = sample.gt_sem_seg.numpy()
    assert sem.shape == (16, 20) and (sem[12:] == 255).all() and (sem[:, 16:] == 255).all()
    expected = np.full((6, 8), 255)
    ids = ids_image0()
    for seg_id, label in ((CAT, 0), (CROWD_CAT, 0), (DOG, 1), (GRASS, 2), (SKY, 3)):
        expected[ids == seg_id] = label
    assert np.array_equal(sem[:12, :16], np.repeat(np.repeat(expected, 2, 0), 2, 1)[:, ::-1])
    masks = sample.gt.masks.numpy()
    for mask, label in zip(masks, sample.gt.labels.tolist()):
        assert (sem[mask] == label).all()


def test_class_subset_makes_other_segments_void(tmp_path):
    ds = _ds(tmp_path, test_mode=True, classes=["dog", "sky"], pipeline=LOAD)
    assert ds.num_things == 1
    sem = ds[0]["sample"].gt_sem_seg.numpy()
    ids = ids_image0()
    assert (sem[ids == CAT] == 255).all() and (sem[ids == GRASS] == 255).all() and (sem[ids == SKY] == 1).all()
    with pytest.raises(DataError, match="thing class before"):
        _ds(tmp_path / "b", classes=["sky", "dog"])


def test_registered_and_builds_from_a_preset_section(tmp_path):
    from det.core.data.loader import build_dataset

    ann = make_dataset(tmp_path)
    ds = build_dataset({"type": "CocoPanopticDataset", "ann_file": "panoptic_val.json", "data_root": str(tmp_path),
                        "data_prefix": {"img": "val/", "seg": "panoptic_val/"}, "pipeline": LOAD})
    assert len(ds) == 2 and ds[1]["sample"].gt_sem_seg is not None and ann.is_file()


def _edit(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_hostile_missing_png(tmp_path):
    ann = make_dataset(tmp_path)
    (tmp_path / "panoptic_val" / "001.png").unlink()
    with pytest.raises(DataError, match=r"annotations\[1\]: segment PNG .*panoptic_val/001.png not found"):
        CocoPanopticDataset(str(ann))


def test_hostile_unknown_category(tmp_path):
    ann = make_dataset(tmp_path)
    _edit(ann, lambda d: d["annotations"][0]["segments_info"][0].update(category_id=99))
    with pytest.raises(DataError, match=r"annotations\[0\]\.segments_info\[0\]: unknown category_id 99"):
        CocoPanopticDataset(str(ann))


def test_hostile_json_segment_absent_from_png(tmp_path):
    ann = make_dataset(tmp_path)
    _edit(ann, lambda d: d["annotations"][0]["segments_info"].append({"id": 4242, "category_id": 5}))
    ds = CocoPanopticDataset(str(ann), data_prefix={"img": str(tmp_path / "val")}, pipeline=LOAD)
    with pytest.raises(DataError, match=r"000.png: segment id 4242 of segments_info is not in the PNG"):
        ds[0]


def test_hostile_png_id_without_segment(tmp_path):
    ann = make_dataset(tmp_path)
    ids = ids_image0()
    ids[0, 0] = CROWD_CAT  # an id the JSON no longer lists (removed below)
    write_rgb_png(tmp_path / "panoptic_val" / "000.png", ids)
    _edit(ann, lambda d: d["annotations"][0]["segments_info"].__setitem__(
        slice(None), [s for s in d["annotations"][0]["segments_info"] if s["id"] != CROWD_CAT]))
    ds = CocoPanopticDataset(str(ann), data_prefix={"img": str(tmp_path / "val")}, pipeline=LOAD, test_mode=True)
    with pytest.raises(DataError, match=r"PNG segment id 9 has no entry in segments_info"):
        ds[0]


def test_hostile_categories_need_isthing(tmp_path):
    ann = make_dataset(tmp_path)
    _edit(ann, lambda d: d["categories"][1].pop("isthing"))
    with pytest.raises(DataError, match=r"categories\[1\] needs 'id', 'name' and 'isthing'"):
        CocoPanopticDataset(str(ann))


def test_cli_reports_a_missing_png_in_one_line(tmp_path, det_inproc):
    ann = make_dataset(tmp_path)
    (tmp_path / "panoptic_val" / "000.png").unlink()
    preset = tmp_path / "p.yaml"
    preset.write_text(f"data:\n  train:\n    dataset: {{type: CocoPanopticDataset, ann_file: {ann}}}\n")
    res = det_inproc("browse", preset, "--out-dir", tmp_path / "o", "--raw")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "annotations[0]: segment PNG" in res.stderr and "000.png not found" in res.stderr


@pytest.mark.parametrize("step", [{"type": "RandomAffine", "max_rotate_degree": 30, "border": [4, 4]},
                                  {"type": "Expand", "ratio_range": [1.5, 2], "prob": 1.0},
                                  {"type": "MinIoURandomCrop", "min_ious": [0.1]},
                                  {"type": "RandomCrop", "crop_size": [6, 5]}])
def test_semantic_map_agrees_with_thing_masks_after_geometric_transforms(tmp_path, step):
    from det.core.data.transforms import seed_all

    pipe = [LOAD[0], LOAD[1], {"type": "Resize", "scale": [32, 24]}, step, {"type": "Pack"}]
    ds = _ds(tmp_path, test_mode=True, pipeline=pipe)
    for seed in range(3):
        seed_all(seed)
        sample = ds[0]["sample"]
        sem = sample.gt_sem_seg.numpy()
        assert sem.shape == tuple(sample.img_shape)
        for mask, label in zip(sample.gt.masks.numpy(), sample.gt.labels.tolist()):
            assert (sem[mask] == label).all()
        assert (sem != 255).sum() >= sum(m.sum() for m in sample.gt.masks.numpy())


def test_mixing_transforms_refuse_semantic_maps(tmp_path):
    pipe = [LOAD[0], LOAD[1], {"type": "Mosaic", "img_scale": [16, 16], "use_cache": False}, {"type": "Pack"}]
    ds = _ds(tmp_path, test_mode=True, pipeline=pipe)
    with pytest.raises(DataError, match="Mosaic does not mix semantic maps"):
        ds[0]
