"""Non-finite numbers and non-positive boxes are never accepted nor written (issue 16, kind
'validation before work')."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.hostile.conftest import assert_user_error, box, files_under, image, write_coco


def _gt(tmp_path):
    return write_coco(tmp_path / "gt.json", [image(), image(2, "b.png")], [box(), box(2, img=2)])


@pytest.mark.parametrize("bad", [{"score": float("nan")}, {"bbox": [1, 1, float("inf"), 2]}, {"bbox": [1, 1, -3, 2]}])
def test_fuse_results_refuses_non_finite_inputs(det_inproc, tmp_path, bad):
    gt = _gt(tmp_path)
    good = [{"image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "score": 0.9}]
    res = tmp_path / "res.json"
    res.write_text(json.dumps([{**good[0], **bad}]))  # Python writes NaN/Infinity as bare words
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(good))
    out = tmp_path / "fused.json"
    r = det_inproc("fuse-results", ok, res, "--ann", gt, "--out", out)
    assert_user_error(r, "res.json", "item 0")
    assert not out.exists()


def test_eval_refuses_nan_scores(det_inproc, tmp_path):
    gt = _gt(tmp_path)
    res = tmp_path / "res.json"
    res.write_text('[{"image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "score": NaN}]')
    assert_user_error(det_inproc("eval", res, "--ann", gt), "res.json", "non-finite")


def test_coco2yolo_refuses_nan_boxes(det_inproc, tmp_path):
    ann = write_coco(tmp_path / "ann.json", [image()], [box(bbox=(1, 1, float("nan"), 3))])
    out = tmp_path / "yolo"
    assert_user_error(det_inproc("convert", "coco2yolo", ann, "--out-dir", out), "ann.json", "annotations[0].bbox")
    assert files_under(out) == []


def _mot(root, line: str):
    seq = root / "train" / "MOT17-02-FRCNN"
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    cv2.imwrite(str(seq / "img1" / "000001.jpg"), np.zeros((48, 64, 3), np.uint8))
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=MOT17-02-FRCNN\nimDir=img1\nframeRate=30\nseqLength=1\n"
                                     "imWidth=64\nimHeight=48\nimExt=.jpg\n")
    (seq / "gt" / "gt.txt").write_text(line + "\n")
    return seq / "gt" / "gt.txt"


@pytest.mark.parametrize("line", ["1,1,10,10,-5,20,1,1,1.0", "1,1,10,10,nan,20,1,1,1.0", "1,1,10,10,5,inf,1,1,1.0"])
def test_convert_mot_refuses_bad_boxes(det_inproc, tmp_path, line):
    gt = _mot(tmp_path / "MOT17", line)
    out = tmp_path / "ann"
    assert_user_error(det_inproc("convert", "mot", tmp_path / "MOT17", "--out-dir", out), f"{gt}:1")
    assert files_under(out) == []


def _voc(devkit, xmin: str, xmax: str):
    voc = devkit / "VOC2007"
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (voc / sub).mkdir(parents=True)
    (voc / "ImageSets/Main/trainval.txt").write_text("000001\n")
    (voc / "Annotations/000001.xml").write_text(
        "<annotation><filename>000001.jpg</filename><size><width>64</width><height>48</height></size>"
        f"<object><name>dog</name><difficult>0</difficult><bndbox><xmin>{xmin}</xmin><ymin>5</ymin><xmax>{xmax}</xmax>"
        "<ymax>20</ymax></bndbox></object></annotation>")
    return voc / "Annotations/000001.xml"


@pytest.mark.parametrize("xmin,xmax", [("30", "10"), ("nan", "10"), ("5", "inf")])
def test_convert_voc_refuses_bad_boxes(det_inproc, tmp_path, xmin, xmax):
    xml = _voc(tmp_path / "VOCdevkit", xmin, xmax)
    out = tmp_path / "ann"
    assert_user_error(det_inproc("convert", "voc", tmp_path / "VOCdevkit", "--out-dir", out), str(xml), "object 0")
    assert files_under(out) == []


def _browse_preset(tmp_path, ann) -> str:
    preset = tmp_path / "p.yaml"
    preset.write_text(f"data:\n  classes: [a]\n  train:\n    batch_size: 1\n    num_workers: 0\n    dataset: "
                      f"{{type: CocoDataset, ann_file: {ann}, data_prefix: {tmp_path}}}\n")
    return str(preset)


@pytest.mark.parametrize("bbox,what", [((1, 1, float("nan"), 3), "non-finite"), ((1, 1, float("inf"), 3), "non-finite"),
                                       ((1, 1, 0.2, 0.2), "all 1 boxes are invalid")])
def test_training_data_with_only_bad_boxes_is_an_error(det_inproc, tmp_path, bbox, what):
    ann = write_coco(tmp_path / "train.json", [image()], [box(bbox=bbox)])
    assert_user_error(det_inproc("browse", _browse_preset(tmp_path, ann), "--stats"), "train.json", what)


@pytest.mark.parametrize("images,msg", [([image(), image()], "duplicate image id 1"),
                                        ([image(w=0)], "must be positive")])
def test_training_data_bad_images(det_inproc, tmp_path, images, msg):
    ann = write_coco(tmp_path / "train.json", images, [box()])
    assert_user_error(det_inproc("browse", _browse_preset(tmp_path, ann), "--stats"), "train.json", "images[", msg)
