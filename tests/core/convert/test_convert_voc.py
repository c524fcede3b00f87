"""VOC XML + ImageSets -> COCO JSON, field by field against the XML values."""
import json

import pytest
from convert_trees import VOC_OBJECTS, make_voc, voc_xml
from pycocotools.coco import COCO

from det.core.convert.voc import VOC_CLASSES, convert_voc
from det.core.errors import DetError


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    devkit = make_voc(tmp_path_factory.mktemp("voc") / "VOCdevkit")
    return devkit, convert_voc(devkit, nproc=2)


def test_files_written_per_year_and_split(converted):
    devkit, rows = converted
    names = sorted((devkit / "annotations").iterdir())
    assert [p.name for p in names] == sorted([
        "voc07_train.json", "voc07_val.json", "voc07_trainval.json", "voc07_test.json", "voc12_train.json",
        "voc0712_train.json"])
    assert {r["split"]: r["images"] for r in rows}["voc0712_train"] == 3


def test_voc07_train_fields(converted):
    devkit, _ = converted
    path = devkit / "annotations/voc07_train.json"
    data = json.loads(path.read_text())
    assert data["type"] == "instance"
    assert data["categories"] == [{"supercategory": "none", "id": i, "name": n} for i, n in enumerate(VOC_CLASSES)]
    assert data["images"] == [
        {"id": 0, "file_name": "VOC2007/JPEGImages/000001.jpg", "height": 64, "width": 80},
        {"id": 1, "file_name": "VOC2007/JPEGImages/000002.jpg", "height": 64, "width": 80},
    ]
    expected = []
    for img_id, image in enumerate(["000001", "000002"]):
        objs = VOC_OBJECTS[image]
        for name, x1, y1, x2, y2, difficult in [o for o in objs if not o[5]] + [o for o in objs if o[5]]:
            a, b, c, d = x1 - 1, y1 - 1, x2 - 1, y2 - 1
            expected.append({"segmentation": [[a, b, a, d, c, d, c, b]], "area": (c - a) * (d - b),
                             "iscrowd": difficult, "ignore": difficult, "image_id": img_id,
                             "bbox": [a, b, c - a, d - b], "category_id": VOC_CLASSES.index(name), "id": len(expected)})
    assert data["annotations"] == expected
    assert data["annotations"][0]["bbox"] == [9, 19, 40, 40]  # dog: xmin 10 -> 9 (0-based), w = 50 - 10
    coco = COCO(str(path))
    assert coco.getAnnIds(iscrowd=True) == [2]  # the difficult person


def test_combined_and_empty_images(converted):
    devkit, _ = converted
    both = COCO(str(devkit / "annotations/voc0712_train.json"))
    files = [i["file_name"] for i in both.dataset["images"]]
    assert files == ["VOC2007/JPEGImages/000001.jpg", "VOC2007/JPEGImages/000002.jpg", "VOC2012/JPEGImages/2008_000001.jpg"]
    assert [a["id"] for a in both.dataset["annotations"]] == list(range(5))
    val = json.loads((devkit / "annotations/voc07_val.json").read_text())
    assert len(val["images"]) == 1 and val["annotations"] == []


def test_errors_name_the_file(tmp_path):
    devkit = make_voc(tmp_path / "VOCdevkit")
    (devkit / "VOC2007/Annotations/000002.xml").write_text(voc_xml("000002", [("unicorn", 1, 1, 5, 5, 0)]))
    with pytest.raises(DetError, match=r"000002.xml: object 0: unknown class 'unicorn'"):
        convert_voc(devkit, tmp_path / "o1")
    (devkit / "VOC2007/Annotations/000002.xml").write_text("<annotation><size>")
    with pytest.raises(DetError, match=r"000002.xml:\d+: invalid XML"):
        convert_voc(devkit, tmp_path / "o2")
    (devkit / "VOC2007/Annotations/000002.xml").unlink()
    with pytest.raises(DetError, match="000002.xml: annotation file not found"):
        convert_voc(devkit, tmp_path / "o3")
    with pytest.raises(DetError, match="neither a VOC2007 nor a VOC2012"):
        convert_voc(tmp_path)


def test_custom_classes_and_missing_difficult_tag(tmp_path):
    base = tmp_path / "kit/VOC2007"
    (base / "Annotations").mkdir(parents=True)
    (base / "ImageSets/Main").mkdir(parents=True)
    (base / "ImageSets/Main/train.txt").write_text("img1\n")
    (base / "Annotations/img1.xml").write_text(voc_xml("img1", [("widget", 2.5, 3, 10, 12, 0)], difficult_tag=False))
    (tmp_path / "classes.txt").write_text("gadget\nwidget\n")
    convert_voc(tmp_path / "kit", tmp_path / "out", classes_file=tmp_path / "classes.txt")
    data = json.loads((tmp_path / "out/voc07_train.json").read_text())
    assert [c["name"] for c in data["categories"]] == ["gadget", "widget"]
    (ann,) = data["annotations"]
    assert ann["category_id"] == 1 and ann["bbox"] == [1.5, 2, 7.5, 9] and ann["iscrowd"] == 0
