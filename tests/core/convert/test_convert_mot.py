"""MOTChallenge -> COCO-video JSON and ReID crops, checked against the gt/det rows written."""
import json

import cv2
import numpy as np
import pytest
from convert_trees import MOT_DET, MOT_GT, make_mot
from pycocotools.coco import COCO

from det.core.convert.mot import CATEGORIES, convert_mot, convert_mot_reid
from det.core.errors import DetError


@pytest.fixture(scope="module")
def mot(tmp_path_factory):
    base = tmp_path_factory.mktemp("mot")
    root = make_mot(base / "MOT17")
    rows = convert_mot(root, base / "ann", split_train=True, convert_det=True)
    return root, base / "ann", rows


def load(path):
    COCO(str(path))  # loads in pycocotools
    return json.loads(path.read_text())


def test_train_subset_fields(mot):
    root, out, rows = mot
    assert [r["split"] for r in rows if "videos" in r] == ["train", "test", "half-train", "half-val"]
    data = load(out / "train_cocoformat.json")
    assert data["categories"] == CATEGORIES and len(CATEGORIES) == 13 and CATEGORIES[0] == {"id": 1, "name": "pedestrian"}
    assert data["videos"] == [
        {"id": 1, "name": "MOT17-02-FRCNN", "fps": 30, "width": 64, "height": 48},
        {"id": 2, "name": "MOT17-04-FRCNN", "fps": 30, "width": 64, "height": 48}]
    assert len(data["images"]) == 9 and [i["id"] for i in data["images"]] == list(range(1, 10))
    assert data["images"][0] == {"id": 1, "video_id": 1, "file_name": "MOT17-02-FRCNN/img1/000001.jpg",
                                 "height": 48, "width": 64, "frame_id": 0, "mot_frame_id": 1}
    assert data["images"][6]["frame_id"] == 0 and data["images"][6]["video_id"] == 2
    # annotations: frame order, gt-file order inside a frame; instance ids in order of appearance
    rows_by_frame = sorted(enumerate(MOT_GT), key=lambda t: (t[1][0], t[0]))
    expected, ins = [], {}
    for _, (frame, mot_id, x, y, w, h, conf, cls, vis) in rows_by_frame:
        ins.setdefault(mot_id, len(ins))
        expected.append({"category_id": cls, "bbox": [x, y, w, h], "area": w * h, "iscrowd": False, "visibility": vis,
                         "mot_instance_id": mot_id, "mot_conf": float(conf), "id": len(expected) + 1,
                         "image_id": frame, "instance_id": ins[mot_id]})
    got = data["annotations"][: len(MOT_GT)]
    assert got == expected
    last = data["annotations"][len(MOT_GT):]
    assert [(a["image_id"], a["instance_id"], a["mot_instance_id"]) for a in last] == [(7, 4, 2), (9, 4, 2)]
    assert data["num_instances"] == 5


def test_ids_continue_across_subsets_and_half_split(mot):
    root, out, _ = mot
    test = load(out / "test_cocoformat.json")
    assert test["videos"][0]["id"] == 3 and [i["id"] for i in test["images"]] == [10, 11]
    assert test["annotations"] == [] and test["num_instances"] == 0
    half_train, half_val = load(out / "half-train_cocoformat.json"), load(out / "half-val_cocoformat.json")
    # 6 frames -> first 6 // 2 + 1 = 4 for half-train; 3 frames -> 2
    assert [(i["video_id"], i["mot_frame_id"], i["frame_id"]) for i in half_train["images"]] == [
        (4, 1, 0), (4, 2, 1), (4, 3, 2), (4, 4, 3), (5, 1, 0), (5, 2, 1)]
    assert [(i["video_id"], i["mot_frame_id"], i["frame_id"]) for i in half_val["images"]] == [(6, 5, 0), (6, 6, 1), (7, 3, 0)]
    assert half_train["images"][0]["id"] == 12 and half_val["images"][0]["id"] == 18
    assert half_val["annotations"][0]["id"] == half_train["annotations"][-1]["id"] + 1
    assert [a["instance_id"] for a in half_val["annotations"]] == [0, 1, 2, 3]  # restarts per subset
    lines = (root / "train/MOT17-02-FRCNN/gt/gt_half-val.txt").read_text().splitlines()
    assert lines == [",".join(map(str, r)) for r in MOT_GT if r[0] in (5, 6)]
    lines = (root / "train/MOT17-02-FRCNN/gt/gt_half-train.txt").read_text().splitlines()
    assert len(lines) == sum(r[0] <= 4 for r in MOT_GT)


def test_public_detections_as_coco_results(mot):
    _, out, _ = mot
    dets = json.loads((out / "train_detections.json").read_text())
    expected = [{"image_id": f, "category_id": 1, "bbox": [x, y, w, h], "score": s} for f, _, x, y, w, h, s in MOT_DET]
    expected.append({"image_id": 8, "category_id": 1, "bbox": [1.0, 1.0, 2.0, 2.0], "score": 0.5})
    assert sorted(dets, key=lambda d: d["image_id"]) == expected
    gt = COCO(str(out / "train_cocoformat.json"))
    assert len(gt.loadRes(dets).getAnnIds()) == 4  # loads as results against the gt
    assert json.loads((out / "test_detections.json").read_text()) == [
        {"image_id": 11, "category_id": 1, "bbox": [3.0, 3.0, 4.0, 4.0], "score": 0.7}]


def test_layout_errors(tmp_path):
    root = make_mot(tmp_path / "MOT17")
    ini = root / "train/MOT17-04-FRCNN/seqinfo.ini"
    ini.write_text(ini.read_text().replace("seqLength=3", "seqLength=4"))
    with pytest.raises(DetError, match="MOT17-04-FRCNN/seqinfo.ini: seqLength=4 but .* holds 3 images"):
        convert_mot(root, tmp_path / "o")
    ini.write_text(ini.read_text().replace("seqLength=4", "seqLength=3"))
    gt = root / "train/MOT17-02-FRCNN/gt/gt.txt"
    gt.write_text(gt.read_text() + "7,1,2\n")
    with pytest.raises(DetError, match=r"gt/gt.txt:10: expected at least 6"):
        convert_mot(root, tmp_path / "o")
    gt.write_text("1,1,a,2,3,4,1,1,1\n")
    with pytest.raises(DetError, match=r"gt/gt.txt:1: values are not numbers"):
        convert_mot(root, tmp_path / "o")


def test_reid_crops_and_lists(tmp_path):
    root = make_mot(tmp_path / "MOT17")
    rows = convert_mot_reid(root, tmp_path / "reid", val_split=0.5, vis_threshold=0.3, min_per_person=1, nproc=2)
    imgs = tmp_path / "reid/imgs"
    # kept: class 1 with visibility >= 0.3: person 1 (frames 1, 2, 5), person 7 (1, 2, 6), MOT17-04 person 2 (1, 3)
    people = sorted(p.name for p in imgs.iterdir())
    assert people == ["MOT17-02-FRCNN_000001", "MOT17-02-FRCNN_000007", "MOT17-04-FRCNN_000002"]
    assert [len(list((imgs / p).iterdir())) for p in people] == [3, 3, 2]
    assert rows[0]["crops"] == 8
    # person 7 in frame 1: x 40..70 -> 40..63 (clipped, inclusive), y 20..60 -> 20..47
    crop = cv2.imread(str(imgs / "MOT17-02-FRCNN_000007/000000.jpg"))
    assert crop.shape[:2] == (28, 24)
    frame = cv2.imread(str(root / "train/MOT17-02-FRCNN/img1/000001.jpg"))
    ref = frame[20:48, 40:64]
    assert np.abs(crop.astype(int) - ref.astype(int)).mean() < 12  # JPEG twice, same pixels
    meta = tmp_path / "reid/meta"
    train = (meta / "train_50.txt").read_text().splitlines()
    val = (meta / "val_50.txt").read_text().splitlines()
    assert {line.split("/")[0] for line in train} == {"MOT17-02-FRCNN_000001"}  # int(3 * 0.5) = 1 identity
    assert {line.rsplit(" ", 1)[1] for line in val} == {"0", "1"}
    assert len((meta / "train.txt").read_text().splitlines()) == 8
    convert_mot_reid(root, tmp_path / "reid2", min_per_person=3)
    listed = (tmp_path / "reid2/meta/train.txt").read_text().splitlines()
    assert len(listed) == 6  # MOT17-04's person has 2 crops < 3: not listed
    with pytest.raises(DetError, match="already exists"):
        convert_mot_reid(root, tmp_path / "reid2")
