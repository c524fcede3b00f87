import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from det.core.data import build_dataset
from det.core.data.datasets import (
    ClassBalancedDataset, CocoDataset, ConcatDataset, CustomDataset, RepeatDataset, VOCDataset,
)
from det.core.errors import ConfigError, DataError, DetError

LOAD = [{"type": "LoadImage"}, {"type": "LoadAnnotations", "with_mask": True}, {"type": "Pack"}]


def _coco_eval_self(gt: dict) -> float:
    """mAP of the ground truth scored against itself (1.0 for a valid COCO dict)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                for a in gt["annotations"] if not a["iscrowd"]]
        ev = COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return float(ev.stats[0])


def test_coco_boxes_masks_ignore(coco_dir):
    ds = CocoDataset(ann_file=str(coco_dir / "ann.json"), data_prefix=str(coco_dir / "imgs"), pipeline=LOAD)
    assert ds.classes == ("a", "b", "c") and ds.cat_ids == [3, 7, 9]  # category id order
    assert len(ds) == 2
    s = ds[0]["sample"]
    # degenerate 0.5 px wide box dropped; crowd kept as ignored
    np.testing.assert_allclose(s.gt.bboxes.numpy(), [[2, 4, 12, 10], [30, 10, 50, 20]])
    assert s.gt.labels.tolist() == [0, 2] and s.gt.ignore.tolist() == [False, True]
    m = s.gt.masks.numpy()
    assert m.shape == (2, 40, 60)
    ys, xs = np.nonzero(m[0])
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (2, 12, 4, 10)  # polygon
    assert m[1].sum() == 200 and m[1][10:20, 30:50].all()  # compressed RLE
    s2 = ds[1]["sample"]
    assert s2.gt.masks.numpy()[0][5:15, 2:12].all() and s2.gt.masks.numpy().sum() == 100  # uncompressed RLE
    assert s2.ori_shape == (50, 30) and ds[1]["inputs"].shape == (3, 50, 30)


def test_coco_class_subset_remaps_and_filters(coco_dir):
    ds = CocoDataset(ann_file=str(coco_dir / "ann.json"), data_prefix=str(coco_dir / "imgs"), classes=["c", "a"])
    assert ds.classes == ("c", "a") and ds.cat_ids == [9, 3]
    assert len(ds) == 1  # image 12 only has class b: filtered as empty
    labels = [i["bbox_label"] for i in ds.data_list[0]["instances"]]
    assert labels == [1, 0]
    gt = ds.coco_gt()
    assert {c["id"] for c in gt["categories"]} == {9, 3}
    assert {a["category_id"] for a in gt["annotations"]} == {9, 3}
    test = CocoDataset(ann_file=str(coco_dir / "ann.json"), data_prefix=str(coco_dir / "imgs"), classes=["c", "a"], test_mode=True)
    assert len(test) == 2
    assert _coco_eval_self(test.coco_gt()) == pytest.approx(1.0)


def test_coco_errors_name_the_file(coco_dir, tmp_path):
    with pytest.raises(DataError, match="ann.json.*'zebra'"):
        CocoDataset(ann_file=str(coco_dir / "ann.json"), classes=["zebra"])
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [], \n "categories": [}')
    with pytest.raises(DetError, match=r"bad.json:2: invalid JSON"):
        CocoDataset(ann_file=str(bad))
    ds = CocoDataset(ann_file=str(coco_dir / "ann.json"), data_prefix=str(tmp_path / "nowhere"), pipeline=LOAD)
    with pytest.raises(DataError, match="nowhere/one.png: cannot read image"):
        ds[0]


def test_voc_loader(voc_dir):
    ds = VOCDataset(ann_file="VOC2007/ImageSets/Main/trainval.txt", data_root=str(voc_dir), data_prefix="VOC2007/",
                    pipeline=LOAD[:1] + [{"type": "LoadAnnotations"}, {"type": "Pack"}])
    assert len(ds.classes) == 20 and len(ds) == 2
    s = ds[0]["sample"]
    np.testing.assert_allclose(s.gt.bboxes.numpy(), [[4, 5, 19, 29], [9, 9, 39, 44]])  # 1-based -> 0-based
    assert s.gt.ignore.tolist() == [True, False]  # difficult dog
    assert [ds.classes[i] for i in s.gt.labels.tolist()] == ["dog", "cat"]
    gt = ds.coco_gt()
    assert [a["iscrowd"] for a in gt["annotations"]] == [1, 0, 0]
    assert _coco_eval_self(gt) == pytest.approx(1.0)


def test_voc_class_subset(voc_dir):
    ds = VOCDataset(ann_file="VOC2007/ImageSets/Main/trainval.txt", data_root=str(voc_dir), data_prefix="VOC2007/",
                    classes=["person", "dog"])
    # image 1 keeps only its difficult dog -> no usable gt -> filtered for training
    assert len(ds) == 1 and ds.data_list[0]["instances"][0]["bbox_label"] == 0
    ds = VOCDataset(ann_file="VOC2007/ImageSets/Main/trainval.txt", data_root=str(voc_dir), data_prefix="VOC2007/",
                    classes=["person", "dog"], test_mode=True)
    assert [i["bbox_label"] for i in ds.data_list[0]["instances"]] == [1]
    with pytest.raises(DataError, match="missing.txt: VOC split file not found"):
        VOCDataset(ann_file="missing.txt", data_root=str(voc_dir))


def test_middle_format(tmp_path):
    from tests.core.data.conftest import write_img

    write_img(tmp_path / "a.png", 20, 20)
    entries = [{"filename": "a.png", "width": 20, "height": 20, "instances": [
        {"bbox": [1, 2, 11, 12], "label": "dog", "mask": [[1, 2, 11, 2, 11, 12, 1, 12]]},
        {"bbox": [0, 0, 5, 5], "label": "cat", "ignore": True}]}]
    (tmp_path / "m.json").write_text(json.dumps(entries))
    ds = CustomDataset(ann_file="m.json", data_root=str(tmp_path), pipeline=LOAD)
    assert ds.classes == ("cat", "dog")
    s = ds[0]["sample"]
    assert s.gt.labels.tolist() == [1, 0] and s.gt.ignore.tolist() == [False, True]
    assert s.gt.masks.numpy()[0].sum() == 100
    sub = CustomDataset(ann_file="m.json", data_root=str(tmp_path), classes=["dog"])
    assert [i["bbox_label"] for i in sub.data_list[0]["instances"]] == [0]
    entries[0]["instances"][0]["label"] = 5
    (tmp_path / "m.json").write_text(json.dumps(entries))
    with pytest.raises(DataError, match="m.json: image 0, instance 0: label 5"):
        CustomDataset(ann_file="m.json", data_root=str(tmp_path), classes=["a", "b"])


def test_wrappers(coco_dir, voc_dir):
    base = {"type": "CocoDataset", "ann_file": str(coco_dir / "ann.json"), "data_prefix": str(coco_dir / "imgs"), "test_mode": True}
    rep = build_dataset({"type": "RepeatDataset", "times": 3, "dataset": base})
    assert len(rep) == 6 and rep.get_data_info(4)["img_id"] == 11 and rep.classes == ("a", "b", "c")
    cat = build_dataset({"type": "ConcatDataset", "datasets": [base, base]}, pipeline=LOAD)
    assert len(cat) == 4
    ids = [cat[i]["sample"].img_id for i in range(4)]
    assert len(set(ids)) == 4
    gt = cat.coco_gt()
    assert sorted(i["id"] for i in gt["images"]) == sorted(ids) and len(gt["annotations"]) == 8
    # class-balanced: a in 1/2 images, b in 1/2 (degenerate box dropped in image 11), c is crowd only
    cb = ClassBalancedDataset(CocoDataset(**{k: v for k, v in base.items() if k != "type"}), oversample_thr=1.0)
    assert cb.repeat_factors == pytest.approx([np.sqrt(2), np.sqrt(2)])
    assert len(cb) == 4
    with pytest.raises(ConfigError, match="dataset.tiems: unknown key for RepeatDataset; did you mean 'times'"):
        build_dataset({"dataset": {"type": "RepeatDataset", "tiems": 2, "dataset": base}})
    voc = {"type": "VOCDataset", "ann_file": "VOC2007/ImageSets/Main/trainval.txt", "data_root": str(voc_dir), "data_prefix": "VOC2007/"}
    with pytest.raises(DataError, match="ConcatDataset: datasets.1 has classes"):
        ConcatDataset([base, voc])
    assert isinstance(RepeatDataset(base, 1).dataset, CocoDataset)


def test_set_pipeline_switches(coco_dir):
    ds = build_dataset({"dataset": {"type": "CocoDataset", "ann_file": str(coco_dir / "ann.json"),
                                    "data_prefix": str(coco_dir / "imgs")}, "pipeline": LOAD})
    assert ds[0]["inputs"].shape[1:] == (40, 60)
    ds.set_pipeline([{"type": "LoadImage"}, {"type": "Resize", "scale": [30, 20]}, {"type": "Pack"}])
    assert ds[0]["inputs"].shape[1:] == (20, 30)
    with pytest.raises(ConfigError, match=r"pipeline.1.type: unknown type 'Resise'; did you mean 'Resize'"):
        ds.set_pipeline([{"type": "LoadImage"}, {"type": "Resise"}])


def test_bad_image_skipped_with_count(coco_dir, caplog):
    (coco_dir / "imgs" / "two.png").write_bytes(b"not a png")
    pipe = [{"type": "LoadImage", "skip_bad_images": True}, {"type": "LoadAnnotations"}, {"type": "Pack"}]
    ds = CocoDataset(ann_file=str(coco_dir / "ann.json"), data_prefix=str(coco_dir / "imgs"), pipeline=pipe)
    for _ in range(3):
        assert ds[1]["sample"].img_id == 11  # the unreadable image is replaced by a readable one
    assert ds.pipeline.transforms[0].num_skipped >= 3  # refetches may draw the bad image again
    strict = CocoDataset(ann_file=str(coco_dir / "ann.json"), data_prefix=str(coco_dir / "imgs"), pipeline=LOAD)
    with pytest.raises(DataError, match="two.png: cannot read image"):
        strict[1]
