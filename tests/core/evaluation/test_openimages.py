"""Open Images: CSV/hierarchy reading and mAP with group-of, hierarchy and image-level label
rules on a hand-made case worked out below; bad lines name the file and line."""
from __future__ import annotations

import json

import numpy as np
import pytest

from det.core.data.datasets.openimages import load_openimages
from det.core.errors import DetError
from det.core.evaluation.openimages import openimages_evaluate

HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside"
# Animal > {Dog, Cat}; Car. Image i1: a dog, two group-of cat regions; a verified (negative) Car
# label. Image i2: a car.
BOXES = [
    "i1,xclick,/m/d,1,0.1,0.4,0.1,0.4,0,0,0,0,0",
    "i1,xclick,/m/c,1,0.5,1.0,0.5,1.0,0,0,1,0,0",
    "i1,xclick,/m/c,1,0.0,0.3,0.6,0.9,0,0,1,0,0",
    "i2,xclick,/m/x,1,0.0,0.5,0.0,0.5,0,0,0,0,0",
]
HIERARCHY = {"LabelName": "/m/root", "Subcategory": [
    {"LabelName": "/m/a", "Subcategory": [{"LabelName": "/m/d"}, {"LabelName": "/m/c"}]}, {"LabelName": "/m/x"}]}


def det(img, mid, box, score):
    return {"image_id": img, "category_id": mid, "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": score}


RESULTS = [
    det("i1", "/m/d", (10, 10, 40, 40), 0.9),    # dog TP (and Animal TP)
    det("i1", "/m/c", (55, 55, 70, 70), 0.8),    # both inside the first cat group: one TP at 0.8
    det("i1", "/m/c", (75, 75, 95, 95), 0.7),
    det("i1", "/m/x", (70, 0, 100, 30), 0.96),   # Car FP, kept only through the image-level label
    det("i1", "/m/d", (12, 12, 40, 40), 0.5),    # duplicate dog: FP
    det("i2", "/m/x", (0, 0, 50, 50), 0.95),     # car TP
    det("i2", "/m/c", (60, 60, 90, 90), 0.85),   # Cat not verified on i2: dropped
]


def write_case(tmp_path, boxes=BOXES):
    (tmp_path / "boxes.csv").write_text("\n".join([HEADER, *boxes]) + "\n")
    (tmp_path / "class-descriptions-boxable.csv").write_text("/m/a,Animal\n/m/d,Dog\n/m/c,Cat\n/m/x,Car\n")
    (tmp_path / "bbox_labels_600_hierarchy.json").write_text(json.dumps(HIERARCHY))
    (tmp_path / "labels.csv").write_text("ImageID,Source,LabelName,Confidence\ni1,verification,/m/x,0\n")
    (tmp_path / "sizes.json").write_text(json.dumps({"i1": [100, 100], "i2": [100, 100]}))
    return tmp_path / "boxes.csv"


def load(tmp_path, labels=True):
    return load_openimages(tmp_path / "boxes.csv", tmp_path / "class-descriptions-boxable.csv",
                           tmp_path / "bbox_labels_600_hierarchy.json", tmp_path / "labels.csv" if labels else None,
                           tmp_path / "sizes.json", tmp_path)


def test_reading_and_hierarchy(tmp_path):
    write_case(tmp_path)
    mids, names, relation, images = load(tmp_path)
    assert names == ["Animal", "Dog", "Cat", "Car"]
    assert relation.tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]]
    assert [im["image_name"] for im in images] == ["i1", "i2"]
    assert images[0]["instances"][1]["bbox"] == [50.0, 50.0, 100.0, 100.0] and images[0]["instances"][1]["is_group_of"]
    assert images[0]["image_level_labels"].tolist() == [3] and images[1]["image_level_labels"].tolist() == []


def test_hand_made_values(tmp_path):
    write_case(tmp_path)
    mids, names, relation, images = load(tmp_path)
    got = openimages_evaluate(images, RESULTS, mids, relation, classwise=True, names=names)
    # Animal: TP .9, TP .8 (group), FP .5, FP 0 (uncovered group), 3 boxes -> 2/3; Dog 1;
    # Cat: TP .8, FP 0 -> 1/2; Car: FP .96, TP .95 -> 1/2.
    assert got["classwise"] == pytest.approx({"Animal": 2 / 3, "Dog": 1.0, "Cat": 0.5, "Car": 0.5}, abs=1e-6)
    assert got["openimages/AP50"] == pytest.approx((2 / 3 + 2) / 4, abs=1e-6) == got["openimages/mAP"]
    # Without image-level labels the Car FP on i1 is dropped: Car AP 1.
    mids, names, relation, images = load(tmp_path, labels=False)
    got = openimages_evaluate(images, RESULTS, mids, relation, classwise=True, names=names)
    assert got["classwise"]["Car"] == pytest.approx(1.0) and got["openimages/mAP"] == pytest.approx((2 / 3 + 2.5) / 4, abs=1e-6)


def test_ids_by_index_and_errors(tmp_path):
    write_case(tmp_path)
    mids, _, relation, images = load(tmp_path)
    as_index = [{**r, "image_id": 0 if r["image_id"] == "i1" else 1, "category_id": mids.index(r["category_id"]) + 1}
                for r in RESULTS]
    assert openimages_evaluate(images, as_index, mids, relation) == openimages_evaluate(images, RESULTS, mids, relation)
    with pytest.raises(DetError, match="category ids"):
        openimages_evaluate(images, [{**RESULTS[0], "category_id": "/m/zz"}], mids, relation)
    write_case(tmp_path, BOXES + ["i2,xclick,/m/x,1,0.0,oops,0.0,0.5,0,0,0,0,0"])
    with pytest.raises(DetError, match=r"boxes.csv:6: XMin,XMax,YMin,YMax must be numbers"):
        load(tmp_path)
    write_case(tmp_path, BOXES + ["i2,xclick,/m/nope,1,0.0,0.5,0.0,0.5,0,0,0,0,0"])
    with pytest.raises(DetError, match=r"boxes.csv:6: LabelName '/m/nope'"):
        load(tmp_path)
    write_case(tmp_path, BOXES + ["i2,xclick,/m/x,1,0.0"])
    with pytest.raises(DetError, match=r"boxes.csv:6: expected 13 columns"):
        load(tmp_path)


def test_det_eval_and_preset_dataset(det_inproc, tmp_path):
    from det.core.config import load_preset, preset_root
    from det.core.data import build_dataset

    ann = write_case(tmp_path)
    res = tmp_path / "res.json"
    res.write_text(json.dumps(RESULTS))
    r = det_inproc("eval", res, "--ann", ann, "--metric", "openimages", "--img-sizes", tmp_path / "sizes.json",
                   "--image-level-file", tmp_path / "labels.csv", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["openimages/mAP"] == pytest.approx((2 / 3 + 2) / 4, abs=1e-6)
    r = det_inproc("eval", res, "--ann", ann, "--metric", "openimages")
    assert r.returncode == 2 and "--img-sizes" in r.stderr
    keys = {"ann_file": "boxes.csv", "label_file": "class-descriptions-boxable.csv", "meta_file": "sizes.json",
            "hierarchy_file": "bbox_labels_600_hierarchy.json", "image_level_ann_file": "labels.csv",
            "data_root": f"{tmp_path}/"}
    cfg = load_preset(preset_root() / "_base_" / "data" / "openimages.yaml",
                      [f"data.test.dataset.{k}={v}" for k, v in keys.items()])
    ds = build_dataset(cfg["data"]["test"])
    assert len(ds) == 2 and ds.classes == ("Animal", "Dog", "Cat", "Car")
    assert np.array_equal(ds.relation_matrix, load(tmp_path)[2])
