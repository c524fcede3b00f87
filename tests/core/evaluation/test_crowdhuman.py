"""CrowdHuman: odgt reading, AP / MR^-2 / JI on a hand-made case worked out below, bad input."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from det.core.errors import DetError
from det.core.evaluation.crowdhuman import caltech_match, crowdhuman_evaluate, load_crowdhuman


def person(x, y, w, h, tag="person", ignore=0):
    return {"fbox": [x, y, w, h], "vbox": [x, y, w, h], "hbox": [x, y, w, 5], "tag": tag, "extra": {"ignore": ignore}}


ODGT = [
    {"ID": "a,1", "gtboxes": [person(10, 10, 20, 40), person(50, 10, 20, 40), person(0, 60, 40, 40, tag="mask")]},
    {"ID": "b,2", "gtboxes": [person(10, 10, 20, 20), person(60, 60, 20, 20, ignore=1)]},
]
# Image a: d1 hits P1, d2 lies in the `mask` region (neither TP nor FP), d3 is a FP, d4 hits P2;
# image b: its person is missed. 3 persons in all.
RESULTS = [
    {"image_id": 0, "category_id": 1, "bbox": [10, 10, 20, 40], "score": 0.9},
    {"image_id": "a,1", "category_id": 1, "bbox": [5, 65, 10, 10], "score": 0.8},
    {"image_id": 0, "category_id": 1, "bbox": [80, 80, 10, 10], "score": 0.7},
    {"image_id": 0, "category_id": 1, "bbox": [50, 10, 20, 40], "score": 0.6},
]


def write_case(tmp_path, odgt=ODGT):
    (tmp_path / "annotation_val.odgt").write_text("\n".join(json.dumps(r) for r in odgt) + "\n")
    (tmp_path / "id_hw_val.json").write_text(json.dumps({r["ID"]: [100, 100] for r in odgt}))
    return tmp_path / "annotation_val.odgt"


def test_hand_made_values(tmp_path):
    images = load_crowdhuman(write_case(tmp_path))
    got = crowdhuman_evaluate(images, RESULTS)
    # TP, FP, TP: recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3; trapezoids from the first point.
    assert got["crowd_human/mAP"] == pytest.approx((1 / 3) * (0.5 + 2 / 3) / 2, abs=1e-12)
    # FPPI 0, .5, .5 over 2 images: refs up to 0.3162 pick miss rate 2/3, 0.5623 and 1 the last 1/3.
    assert got["crowd_human/mMR"] == pytest.approx(math.exp((7 * math.log(2 / 3) + 2 * math.log(1 / 3)) / 9), abs=1e-12)
    # Score > 0: image a k=2, m=2, n=4-1 (d2 ignored) -> 2/3; image b 0/1 -> mean 1/3, the best threshold.
    assert got["crowd_human/JI"] == pytest.approx((2 / (3 + 1e-6)) / 2, abs=1e-12)


def test_caltech_prefers_a_person_and_a_second_hit_is_a_false_positive():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], float)
    tags = np.array([-1, 1, 1], float)  # the ignore region comes first in the file
    dets = np.array([[0, 0, 10, 10, 0.5], [0, 0, 10, 10, 0.9], [21, 21, 30, 30, 0.1], [40, 40, 50, 50, 0.3]], float)
    # 0.9 takes the person; 0.5 then covers only the ignore region (dropped); 0.3 misses; 0.1 hits.
    assert caltech_match(dets, gt, tags) == [(0.9, 1), (0.3, 0), (0.1, 1)]


def test_perfect_and_empty_results(tmp_path):
    images = load_crowdhuman(write_case(tmp_path))
    hits = [{"image_id": i, "category_id": 1, "bbox": b["box"], "score": 0.9}
            for i, im in enumerate(images) for b in im["boxes"] if b["tag"] == "person" and not b["ignore"]]
    got = crowdhuman_evaluate(images, hits)
    assert got["crowd_human/mAP"] == pytest.approx(2 / 3)  # no area before the first point
    assert got["crowd_human/mMR"] == 0.0
    assert got["crowd_human/JI"] == pytest.approx((2 / (2 + 1e-6) + 1 / (1 + 1e-6)) / 2, abs=1e-12)
    empty = crowdhuman_evaluate(images, [])
    assert empty["crowd_human/mAP"] == 0.0 and math.isnan(empty["crowd_human/mMR"]) and empty["crowd_human/JI"] == 0.0


def test_bad_input_names_file_and_line(tmp_path):
    path = write_case(tmp_path)
    path.write_text(path.read_text() + '{"ID": "c", "gtboxes": [{"tag": "person", "fbox": [1, 2]}]}\n')
    with pytest.raises(DetError, match=r"annotation_val.odgt:3: gtboxes\[0\]: 'fbox'"):
        load_crowdhuman(path)
    path.write_text('{"ID": "a,1", "gtboxes": []}\n{not json\n')
    with pytest.raises(DetError, match=r"annotation_val.odgt:2: invalid JSON"):
        load_crowdhuman(path)
    images = load_crowdhuman(write_case(tmp_path))
    with pytest.raises(DetError, match="image ids not in the annotations"):
        crowdhuman_evaluate(images, [{**RESULTS[0], "image_id": "zz"}])
    with pytest.raises(DetError, match="category ids"):
        crowdhuman_evaluate(images, [{**RESULTS[0], "category_id": 2}])


def test_dataset_reads_odgt_with_sizes_from_images(tmp_path):
    from PIL import Image

    from det.core.data.datasets import DATASETS

    write_case(tmp_path)
    (tmp_path / "id_hw_val.json").unlink()
    (tmp_path / "Images").mkdir()
    for name in ("a,1", "b,2"):
        Image.new("RGB", (100, 80)).save(tmp_path / "Images" / f"{name}.jpg")
    ds = DATASETS["CrowdHumanDataset"](ann_file="annotation_val.odgt", data_root=str(tmp_path), test_mode=True)
    info = ds.get_data_info(0)
    assert ds.classes == ("person",) and (info["height"], info["width"]) == (80, 100)
    assert info["instances"][0]["bbox"] == [10, 10, 30, 50]
    assert [i["ignore_flag"] for i in info["instances"]] == [False, False, True]
    assert [i["ignore_flag"] for i in ds.get_data_info(1)["instances"]] == [False, True]
    assert len(ds.eval_images()) == 2


def test_det_eval_metric_crowdhuman(det_inproc, tmp_path):
    ann = write_case(tmp_path)
    res = tmp_path / "res.json"
    res.write_text(json.dumps(RESULTS))
    r = det_inproc("eval", res, "--ann", ann, "--metric", "crowdhuman", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["crowd_human/mAP"] == pytest.approx(7 / 36)
    ann.write_text(ann.read_text() + "[1, 2]\n")
    r = det_inproc("eval", res, "--ann", ann, "--metric", "crowdhuman")
    assert r.returncode == 2 and "annotation_val.odgt:3:" in r.stderr and "Traceback" not in r.stderr


def test_preset_dataset_and_metric_on_a_tiny_sample(tmp_path):
    from types import SimpleNamespace

    import torch

    from det.core.config import load_preset, preset_root
    from det.core.data import build_dataset
    from det.core.evaluation.evaluator import build_evaluator
    from det.core.structures import Instances

    write_case(tmp_path)
    cfg = load_preset(preset_root() / "_base_" / "data" / "crowdhuman.yaml", [f"data.test.dataset.data_root={tmp_path}/"])
    ds = build_dataset(cfg["data"]["test"])
    assert len(ds) == 2 and ds.data_list[1]["image_name"] == "b,2"
    evaluator = build_evaluator(cfg["evaluation"], ds)
    boxes = torch.tensor([[10, 10, 30, 50], [5, 65, 15, 75], [80, 80, 90, 90], [50, 10, 70, 50]], dtype=torch.float64)
    evaluator.process([SimpleNamespace(img_id=0)], [Instances(bboxes=boxes, labels=torch.zeros(4, dtype=torch.long),
                                                              scores=torch.tensor([0.9, 0.8, 0.7, 0.6]))])
    got = evaluator.evaluate()
    assert got["crowd_human/mAP"] == pytest.approx(7 / 36, abs=1e-6)
    assert got["crowd_human/JI"] == pytest.approx((2 / (3 + 1e-6)) / 2, abs=1e-6)
