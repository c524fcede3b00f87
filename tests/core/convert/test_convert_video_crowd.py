"""CrowdHuman odgt and YouTube-VIS JSON -> COCO(-video) JSON, and images2coco."""
import json

import pytest
from convert_trees import CROWDHUMAN, CROWDHUMAN_SIZES, _img, make_crowdhuman, make_youtubevis, youtubevis_json
from pycocotools.coco import COCO

from det.core.convert.crowdhuman import convert_crowdhuman
from det.core.convert.images2coco import images_to_coco
from det.core.convert.youtubevis import convert_youtubevis
from det.core.errors import DetError


def test_crowdhuman_fields(tmp_path):
    root = make_crowdhuman(tmp_path / "crowdhuman")
    rows = convert_crowdhuman(root, tmp_path / "ann", nproc=2)
    assert [r["split"] for r in rows] == ["train", "val"]
    data = json.loads((tmp_path / "ann/crowdhuman_train.json").read_text())
    COCO(str(tmp_path / "ann/crowdhuman_train.json"))
    assert data["categories"] == [{"id": 1, "name": "pedestrian"}]
    assert data["images"] == [
        {"file_name": f"Images/{r['ID']}.jpg", "height": CROWDHUMAN_SIZES[r["ID"]][1],
         "width": CROWDHUMAN_SIZES[r["ID"]][0], "id": k} for k, r in enumerate(CROWDHUMAN["train"], 1)]
    boxes = CROWDHUMAN["train"][0]["gtboxes"]
    assert data["annotations"] == [
        {"id": k, "image_id": 1, "category_id": 1, "vis_bbox": b["vbox"], "bbox": b["fbox"],
         "area": b["fbox"][2] * b["fbox"][3], "iscrowd": b["extra"].get("ignore") == 1} for k, b in enumerate(boxes, 1)]
    assert [a["iscrowd"] for a in data["annotations"]] == [False, True, False]
    val = json.loads((tmp_path / "ann/crowdhuman_val.json").read_text())
    assert val["annotations"][0]["iscrowd"] is False and val["images"][0]["id"] == 1


def test_crowdhuman_errors(tmp_path):
    root = make_crowdhuman(tmp_path / "ch")
    with open(root / "annotation_val.odgt", "a") as fh:
        fh.write("{not json\n")
    with pytest.raises(DetError, match=r"annotation_val.odgt:2: invalid JSON"):
        convert_crowdhuman(root, tmp_path / "o")
    (root / "annotation_val.odgt").write_text(json.dumps({"ID": "x", "gtboxes": [{"fbox": [1, 2]}]}) + "\n")
    _img(root / "val/Images/x.jpg", 8, 8)
    with pytest.raises(DetError, match=r"annotation_val.odgt:1: gtboxes.fbox: expected \[x, y, w, h\]"):
        convert_crowdhuman(root, tmp_path / "o2")
    (root / "annotation_val.odgt").write_text(json.dumps({"ID": "missing", "gtboxes": []}) + "\n")
    with pytest.raises(DetError, match=r"val/Images/missing.jpg: image not found"):
        convert_crowdhuman(root, tmp_path / "o3")


@pytest.mark.parametrize("version", ["2019", "2021"])
def test_youtubevis_fields(tmp_path, version):
    root = make_youtubevis(tmp_path / f"ytvis{version}", version)
    rows = convert_youtubevis(root, tmp_path / "ann", version)
    assert [r["split"] for r in rows] == ["train", "valid"]  # no test file: skipped
    path = tmp_path / f"ann/youtube_vis_{version}_train.json"
    coco = COCO(str(path))
    data = json.loads(path.read_text())
    src = youtubevis_json(True)
    assert data["categories"] == src["categories"]
    assert data["videos"] == [{"id": 5, "name": "0a2f", "width": 32, "height": 24},
                              {"id": 9, "name": "1b3c", "width": 40, "height": 30}]
    assert [(i["id"], i["video_id"], i["frame_id"], i["file_name"]) for i in data["images"]] == [
        (1, 5, 0, "0a2f/00000.jpg"), (2, 5, 1, "0a2f/00005.jpg"), (3, 5, 2, "0a2f/00010.jpg"),
        (4, 9, 0, "1b3c/00000.jpg"), (5, 9, 1, "1b3c/00005.jpg")]
    got = [(a["id"], a["image_id"], a["video_id"], a["category_id"], a["instance_id"], a["bbox"], a["area"])
           for a in data["annotations"]]
    assert got == [(1, 1, 5, 2, 1, [4, 4, 2, 10], 20), (2, 2, 5, 1, 2, [1, 1, 3, 3], 9),
                   (3, 3, 5, 2, 1, [5, 4, 2, 10], 20), (4, 3, 5, 1, 2, [2, 2, 3, 3], 9),
                   (5, 4, 9, 1, 3, [0, 0, 5, 5], 25), (6, 5, 9, 1, 3, [1, 0, 5, 5], 25)]
    assert coco.annToMask(coco.loadAnns(1)[0]).sum() == 20  # segmentation (uncompressed RLE) kept as is
    valid = json.loads((tmp_path / f"ann/youtube_vis_{version}_valid.json").read_text())
    assert valid["annotations"] == [] and len(valid["images"]) == 5


def test_youtubevis_errors(tmp_path):
    root = make_youtubevis(tmp_path / "y", "2019")
    data = youtubevis_json(True)
    data["annotations"][0]["bboxes"] = [[1, 1, 1, 1]]
    (root / "train.json").write_text(json.dumps(data))
    with pytest.raises(DetError, match=r"train.json: annotation id 11: 1 boxes for a video of 3 frames"):
        convert_youtubevis(root, tmp_path / "o", "2019")
    with pytest.raises(DetError, match="--version"):
        convert_youtubevis(root, tmp_path / "o", "2020")
    with pytest.raises(DetError, match="no YouTube-VIS 2021 annotation file"):
        convert_youtubevis(root, tmp_path / "o", "2021")


def test_images2coco(tmp_path):
    _img(tmp_path / "imgs/a.jpg", 20, 10)
    _img(tmp_path / "imgs/sub/b.png", 7, 9)
    _img(tmp_path / "imgs/c.bmp", 5, 5)
    _img(tmp_path / "imgs/d.tif", 5, 5)
    (tmp_path / "imgs/notes.txt").write_text("not an image")
    (tmp_path / "classes.txt").write_text("cat\ndog\n\n")
    rows = images_to_coco(tmp_path / "imgs", tmp_path / "classes.txt", tmp_path / "out.json", exclude_extensions=["bmp,.TIF"])
    data = json.loads((tmp_path / "out.json").read_text())
    COCO(str(tmp_path / "out.json"))
    assert data == {"images": [{"id": 0, "file_name": "a.jpg", "height": 10, "width": 20},
                               {"id": 1, "file_name": "sub/b.png", "height": 9, "width": 7}],
                    "type": "instance",
                    "categories": [{"supercategory": "none", "id": 0, "name": "cat"},
                                   {"supercategory": "none", "id": 1, "name": "dog"}],
                    "annotations": []}
    assert rows[0]["images"] == 2
    with pytest.raises(DetError, match="out.json: already exists"):
        images_to_coco(tmp_path / "imgs", tmp_path / "classes.txt", tmp_path / "out.json")
    (tmp_path / "imgs/broken.jpg").write_bytes(b"garbage")
    with pytest.raises(DetError, match="broken.jpg: cannot read image"):
        images_to_coco(tmp_path / "imgs", tmp_path / "classes.txt", tmp_path / "out.json", force=True)
    (tmp_path / "dup.txt").write_text("cat\ncat\n")
    with pytest.raises(DetError, match=r"dup.txt:2: duplicate class name 'cat'"):
        images_to_coco(tmp_path / "imgs", tmp_path / "dup.txt", tmp_path / "o2.json")
