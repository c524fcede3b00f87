"""Objects365 v2 and WIDER Face read from tiny hand-made samples through their shipped presets."""
from __future__ import annotations

import json

import pytest

from det.core.config import load_preset, preset_root
from det.core.data import build_dataset
from det.core.errors import DataError


def preset(name: str, root, extra=()):
    path = preset_root() / "_base_" / "data" / f"{name}.yaml"
    return load_preset(path, [f"data.{s}.dataset.data_root={root}/" for s in ("train", "test")] + list(extra))


def test_objects365v2_paths_and_ignored_images(tmp_path):
    images = [{"id": 1, "file_name": "images/v2/patch3/objects365_v2_00000001.jpg", "width": 50, "height": 40},
              {"id": 2, "file_name": "images/v1/patch6/objects365_v1_00320532.jpg", "width": 50, "height": 40}]
    anns = [{"id": k + 1, "image_id": i, "category_id": 2, "bbox": [5, 5, 20, 10], "area": 200, "iscrowd": 0}
            for k, i in enumerate((1, 2))]
    cats = [{"id": 1, "name": "Person"}, {"id": 2, "name": "Sneakers"}]
    (tmp_path / "annotations").mkdir()
    for split in ("train", "val"):
        (tmp_path / "annotations" / f"zhiyuan_objv2_{split}.json").write_text(
            json.dumps({"images": images, "annotations": anns, "categories": cats}))
    cfg = preset("objects365v2", tmp_path)
    for split, prefix in (("train", "train"), ("test", "val")):
        ds = build_dataset(cfg["data"][split])
        assert len(ds) == 1 and ds.classes == ("Person", "Sneakers")
        info = ds.get_data_info(0)
        assert info["img_path"] == str(tmp_path / prefix / "patch3" / "objects365_v2_00000001.jpg")
        assert info["instances"][0]["bbox"] == [5.0, 5.0, 25.0, 15.0] and info["instances"][0]["bbox_label"] == 1
    assert [i["id"] for i in ds.coco_gt()["images"]] == [1]


XML = """<annotation><folder>{folder}</folder><filename>{name}.jpg</filename>
<size><width>64</width><height>48</height><depth>3</depth></size>
<object><name>face</name><difficult>0</difficult><bndbox><xmin>4</xmin><ymin>6</ymin><xmax>40</xmax><ymax>44</ymax></bndbox></object>
<object><name>face</name><difficult>0</difficult><bndbox><xmin>50</xmin><ymin>2</ymin><xmax>60</xmax><ymax>12</ymax></bndbox></object>
<object><name>face</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object>
</annotation>"""


def test_wider_face_folders_min_size_and_errors(tmp_path):
    for split in ("train", "val"):
        (tmp_path / f"{split}.txt").write_text("0_Parade_1\n")
        ann = tmp_path / f"WIDER_{split}" / "Annotations"
        ann.mkdir(parents=True)
        (ann / "0_Parade_1.xml").write_text(XML.format(folder="0--Parade", name="0_Parade_1"))
    cfg = preset("wider_face", tmp_path)
    train, test = build_dataset(cfg["data"]["train"]), build_dataset(cfg["data"]["test"])
    info = train.get_data_info(0)
    assert train.classes == ("face",) and info["img_path"] == str(tmp_path / "WIDER_train" / "0--Parade" / "0_Parade_1.jpg")
    assert info["instances"][0]["bbox"] == [4.0, 6.0, 40.0, 44.0]  # no 1 subtracted
    assert [i["ignore_flag"] for i in info["instances"]] == [False, True, True]  # 10 px < 17; difficult
    assert [i["ignore_flag"] for i in test.get_data_info(0)["instances"]] == [False, False, True]
    (tmp_path / "WIDER_val" / "Annotations" / "0_Parade_1.xml").write_text("<annotation><object>")
    with pytest.raises(DataError, match=r"0_Parade_1.xml:1: invalid XML"):
        build_dataset(cfg["data"]["test"])
