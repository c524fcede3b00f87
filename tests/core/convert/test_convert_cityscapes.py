"""Cityscapes -> COCO: instance PNGs drawn with OpenCV and a polygons JSON, checked field by field
against numpy on the drawn pixels and hand-computed values."""
import json

import numpy as np
import pytest
from convert_trees import CITY_FRAME, cityscapes_instance_png, make_cityscapes
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from det.core.convert.cityscapes import CATEGORIES, convert_cityscapes
from det.core.errors import DetError


def numpy_instances(ids):
    """Reference: one record per evaluated instance id, from the pixels with numpy only."""
    out = {}
    for inst in np.unique(ids):
        label = inst // 1000 if inst >= 1000 else inst
        if label not in (24, 25, 26, 27, 28, 31, 32, 33):
            continue
        ys, xs = np.nonzero(ids == inst)
        out[int(inst)] = {"category_id": int(label), "iscrowd": int(inst < 1000), "area": int(len(xs)),
                          "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]}
    return out


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = make_cityscapes(tmp_path_factory.mktemp("cityscapes"))
    rows = convert_cityscapes(root, nproc=2)
    return root, rows


def test_train_split_matches_pixels(converted):
    root, rows = converted
    assert [r["split"] for r in rows] == ["train", "val"]  # no test folder: skipped
    path = root / "annotations/instancesonly_filtered_gtFine_train.json"
    data = json.loads(path.read_text())
    assert data["categories"] == CATEGORIES
    assert [c["id"] for c in data["categories"]] == [24, 25, 26, 27, 28, 31, 32, 33]
    (img,) = data["images"]
    assert img == {"file_name": f"aachen/{CITY_FRAME}_leftImg8bit.png", "height": 32, "width": 48,
                   "segm_file": f"aachen/{CITY_FRAME}_gtFine_labelIds.png", "id": 0}
    ids = cityscapes_instance_png().astype(np.int64)
    expected = numpy_instances(ids)
    assert len(data["annotations"]) == len(expected) == 4  # caravan dropped
    for k, ann in enumerate(data["annotations"]):
        assert ann["id"] == k and ann["image_id"] == 0
        decoded = mask_utils.decode({"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()})
        inst = int(np.unique(ids[decoded.astype(bool)])[0])
        assert np.array_equal(decoded.astype(bool), ids == inst)
        ref = expected[inst]
        assert {k2: ann[k2] for k2 in ref} == ref
    by_cat = {(a["category_id"], a["iscrowd"]): a for a in data["annotations"]}
    # hand-computed: car 0 is the rectangle x 2..12, y 3..9 minus what car 1 (x 10..20, y 5..14) covers
    assert by_cat[(26, 0)]["bbox"] in ([2.0, 3.0, 11.0, 7.0], [10.0, 5.0, 11.0, 10.0])
    cars = sorted((a["bbox"], a["area"]) for a in data["annotations"] if a["category_id"] == 26)
    assert cars == [([2.0, 3.0, 11.0, 7.0], 77 - 15), ([10.0, 5.0, 11.0, 10.0], 110)]
    assert by_cat[(24, 1)]["bbox"] == [36.0, 2.0, 10.0, 5.0] and by_cat[(24, 1)]["area"] == 50
    coco = COCO(str(path))
    assert len(coco.getAnnIds(iscrowd=True)) == 1


def test_val_split_rasterised_from_polygons(converted):
    root, _ = converted
    path = root / "annotations/instancesonly_filtered_gtFine_val.json"
    coco = COCO(str(path))
    anns = sorted(coco.dataset["annotations"], key=lambda a: (a["category_id"], a["iscrowd"], a["bbox"]))
    got = [(a["category_id"], a["iscrowd"], a["bbox"], a["area"]) for a in anns]
    # PIL fills polygons including their edge pixels: rectangle corners (x1,y1)-(x2,y2) -> (x2-x1+1) x (y2-y1+1)
    assert got == [
        (25, 0, [20.0, 10.0, 11.0, 11.0], 121 - 6 * 3),  # x 25..30 of rows 10..12 hidden by the sky drawn after it
        (26, 0, [2.0, 3.0, 9.0, 6.0], 54),
        (26, 0, [40.0, 0.0, 7.0, 5.0], 35),  # drawn after the deleted object: still car 26001
        (26, 1, [35.0, 20.0, 10.0, 6.0], 60),  # 'cargroup' -> crowd region of class car
    ]
    assert coco.dataset["images"][0]["file_name"] == "frankfurt/frankfurt_000000_000294_leftImg8bit.png"


def test_polygon_masks_and_overwrite_rules(converted, tmp_path):
    root, _ = converted
    with pytest.raises(DetError, match="already exists"):
        convert_cityscapes(root)
    convert_cityscapes(root, out_dir=tmp_path, mask_format="polygon")
    rle = json.loads((root / "annotations/instancesonly_filtered_gtFine_train.json").read_text())["annotations"]
    poly = json.loads((tmp_path / "instancesonly_filtered_gtFine_train.json").read_text())["annotations"]
    for a, b in zip(rle, poly):
        assert a["bbox"] == b["bbox"] and a["area"] == b["area"]
        assert isinstance(b["segmentation"], list) and all(len(p) >= 6 and len(p) % 2 == 0 for p in b["segmentation"])
    COCO(str(tmp_path / "instancesonly_filtered_gtFine_train.json"))


def test_layout_errors_name_the_file(tmp_path):
    root = make_cityscapes(tmp_path / "cs")
    (root / f"gtFine/train/aachen/{CITY_FRAME}_gtFine_instanceIds.png").unlink()
    with pytest.raises(DetError, match=f"{CITY_FRAME}_gtFine_instanceIds.png: instance-id PNG not found"):
        convert_cityscapes(root, out_dir=tmp_path / "o1")
    (root / "leftImg8bit/train/aachen/stray.png").write_bytes(b"")
    with pytest.raises(DetError, match="stray.png: not a Cityscapes image name"):
        convert_cityscapes(root, out_dir=tmp_path / "o2")
    with pytest.raises(DetError, match="Cityscapes image folder not found"):
        convert_cityscapes(tmp_path / "cs", img_dir="nope")
    bad = root / "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_polygons.json"
    bad.write_text(json.dumps({"imgHeight": 4, "imgWidth": 4, "objects": [{"label": "spaceship", "polygon": []}]}))
    (root / "leftImg8bit/train").rename(root / "leftImg8bit/train_off")
    with pytest.raises(DetError, match=r"polygons.json: objects\[0\].label: unknown Cityscapes label 'spaceship'"):
        convert_cityscapes(root, out_dir=tmp_path / "o3")
