"""YOLO <-> COCO: fields, Ultralytics layout rules, and round trips exact to 1e-6."""
import json

import numpy as np
import pytest
import yaml
from convert_trees import YOLO_LABELS, make_yolo
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO

from det.core.convert.yolo import coco_objects_to_yolo, coco_to_yolo, parse_label_file, yolo_objects_to_coco, yolo_to_coco
from det.core.errors import DetError


def read_labels(path):
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def yolo(tmp_path):
    root = make_yolo(tmp_path / "ds")
    yolo_to_coco(root / "data.yaml", tmp_path / "coco", nproc=2)
    return root, tmp_path / "coco"


def test_yolo2coco_fields(yolo):
    root, out = yolo
    train = json.loads((out / "train.json").read_text())
    COCO(str(out / "train.json"))
    assert train["categories"] == [{"id": 1, "name": "cat", "supercategory": "none"},
                                   {"id": 2, "name": "dog", "supercategory": "none"},
                                   {"id": 3, "name": "bird", "supercategory": "none"}]
    assert [(i["file_name"], i["width"], i["height"]) for i in train["images"]] == [
        ("images/train/a.jpg", 64, 48), ("images/train/c.jpg", 32, 32), ("images/train/sub/b.png", 40, 30)]
    a0, a1, a2 = train["annotations"]
    assert a0["category_id"] == 1 and a0["image_id"] == 1 and a0["iscrowd"] == 0
    np.testing.assert_allclose(a0["bbox"], [0.5 * 64 - 8, 0.5 * 48 - 12, 16, 24], atol=1e-9)
    np.testing.assert_allclose(a0["area"], 16 * 24)
    np.testing.assert_allclose(a1["bbox"], [0.1234567891 * 64 - 6.4, 0.3 * 48 - 2.4, 12.8, 4.8], atol=1e-9)
    assert a2["category_id"] == 2 and a2["image_id"] == 3  # the segment of sub/b.png
    np.testing.assert_allclose(a2["segmentation"], [[4, 3, 20, 3, 20, 18, 4, 18]], atol=1e-9)
    np.testing.assert_allclose(a2["bbox"], [4, 3, 16, 15], atol=1e-9)
    assert a2["area"] == 16 * 15  # pycocotools' mask area of the rectangle
    val = json.loads((out / "val.json").read_text())
    assert [i["file_name"] for i in val["images"]] == ["images/val/d.jpg"]  # from the ./ entry of val.txt


def test_round_trip_yolo_coco_yolo(yolo, tmp_path):
    root, out = yolo
    coco_to_yolo(out / "train.json", tmp_path / "back", split="train", img_dir=root, segments=True)
    coco_to_yolo(out / "val.json", tmp_path / "back", split="val", img_dir=root, image_mode="copy")
    for rel, (_, _, text) in YOLO_LABELS.items():
        got = read_labels((tmp_path / "back" / rel.replace("images/", "labels/")).with_suffix(".txt"))
        want = [] if text is None else [[float(v) for v in line.split()] for line in text.splitlines()]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g[0] == w[0] and len(g) == len(w)
            # the segment comes back as the same 4 corners, in the same order
            np.testing.assert_allclose(g[1:], w[1:], atol=1e-6, rtol=0)
    data = yaml.safe_load((tmp_path / "back/data.yaml").read_text())
    assert data == {"path": ".", "train": "train.txt", "val": "val.txt", "nc": 3,
                    "names": {0: "cat", 1: "dog", 2: "bird"}}
    assert (tmp_path / "back/images/train/sub/b.png").is_symlink()
    assert (tmp_path / "back/images/val/d.jpg").is_file() and not (tmp_path / "back/images/val/d.jpg").is_symlink()
    # and the converted-back dataset converts to the same COCO again
    yolo_to_coco(tmp_path / "back/data.yaml", tmp_path / "coco2")
    first = json.loads((out / "train.json").read_text())
    second = json.loads((tmp_path / "coco2/train.json").read_text())
    assert [i["file_name"] for i in first["images"]] == [i["file_name"] for i in second["images"]]
    for a, b in zip(first["annotations"], second["annotations"]):
        np.testing.assert_allclose(a["bbox"], b["bbox"], atol=1e-6, rtol=0)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4000), st.integers(1, 4000), st.data())
def test_coco_to_yolo_to_coco_boxes_exact(width, height, data):
    x = data.draw(st.floats(0, 0.999)) * width
    y = data.draw(st.floats(0, 0.999)) * height
    w = data.draw(st.floats(1e-4, 1.0)) * (width - x)
    h = data.draw(st.floats(1e-4, 1.0)) * (height - y)
    stats = {"crowd_skipped": 0, "parts_dropped": 0, "clipped": 0, "empty_skipped": 0}
    (line,) = coco_objects_to_yolo([{"category_id": 7, "bbox": [x, y, w, h]}], width, height, {7: 0}, False, stats)
    values = [float(v) for v in line.split()]
    (ann,) = yolo_objects_to_coco([(int(values[0]), values[1:])], width, height)
    np.testing.assert_allclose(ann["bbox"], [x, y, w, h], atol=1e-6, rtol=0)


def test_coco2yolo_skips_crowd_and_clips(tmp_path):
    coco = {"images": [{"id": 3, "file_name": "x/a.jpg", "width": 100, "height": 50}],
            "categories": [{"id": 90, "name": "z"}, {"id": 5, "name": "y"}],
            "annotations": [{"id": 1, "image_id": 3, "category_id": 90, "bbox": [-10, 10, 30, 20], "iscrowd": 0},
                            {"id": 2, "image_id": 3, "category_id": 5, "bbox": [0, 0, 5, 5], "iscrowd": 1}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    rows = coco_to_yolo(tmp_path / "c.json", tmp_path / "y")
    assert rows[0]["crowd_skipped"] == 1 and rows[0]["clipped"] == 1
    assert read_labels(tmp_path / "y/labels/train/x/a.txt") == [[1.0, 0.1, 0.4, 0.2, 0.4]]
    assert (tmp_path / "y/train.txt").read_text() == "./images/train/x/a.jpg\n"
    assert yaml.safe_load((tmp_path / "y/data.yaml").read_text())["names"] == {0: "y", 1: "z"}  # id order
    with pytest.raises(DetError, match="train.txt: already exists"):
        coco_to_yolo(tmp_path / "c.json", tmp_path / "y")
    coco["categories"][0]["name"] = "other"
    (tmp_path / "c2.json").write_text(json.dumps(coco))
    with pytest.raises(DetError, match="data.yaml: already exists with other class names"):
        coco_to_yolo(tmp_path / "c2.json", tmp_path / "y", split="val")


def test_label_and_yaml_errors(tmp_path):
    bad = tmp_path / "l.txt"
    bad.write_text("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DetError, match=r"l.txt:2: class 3 outside 0..2"):
        parse_label_file(bad, 3)
    bad.write_text("0 0.5 0.5 1.2 0.2\n")
    with pytest.raises(DetError, match=r"l.txt:1: coordinates must be normalised"):
        parse_label_file(bad, 3)
    bad.write_text("0 0.5 0.5 0.2\n")
    with pytest.raises(DetError, match=r"l.txt:1: expected 'class xc yc w h'"):
        parse_label_file(bad, 3)
    root = make_yolo(tmp_path / "ds")
    (root / "data.yaml").write_text("train: images/train\nnames: [a, b]\nkpt_shape: [17, 3]\n")
    with pytest.raises(DetError, match="pose"):
        yolo_to_coco(root / "data.yaml", tmp_path / "o")
    (root / "data.yaml").write_text("train: nowhere\nnames: [a, b, c]\n")
    with pytest.raises(DetError, match="split entry 'nowhere'"):
        yolo_to_coco(root / "data.yaml", tmp_path / "o")
    (root / "data.yaml").write_text("train: images/train\nnames: [a, b]\n")
    with pytest.raises(DetError, match=r"a.txt:2: class 2 outside 0..1"):
        yolo_to_coco(root / "data.yaml", tmp_path / "o")
