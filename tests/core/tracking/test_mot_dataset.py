"""MOTChallengeDataset: frames as detection records (pedestrians, ignored boxes, clipping),
sequence selection, errors naming the path; is_mot_preset on the bundled MOT preset."""
from __future__ import annotations

import numpy as np
import pytest

from det.core.data import build_dataset
from det.core.errors import DataError
from det.core.data.mot_io import write_seqinfo


def _seq(root, name: str, frames: int, gt_lines: list[str] | None, size=(80, 60)) -> None:
    import cv2

    seq = root / name
    (seq / "img1").mkdir(parents=True)
    for f in range(1, frames + 1):
        cv2.imwrite(str(seq / "img1" / f"{f:06d}.jpg"), np.zeros((size[1], size[0], 3), np.uint8))
    write_seqinfo(seq, name, frames, size[0], size[1])
    if gt_lines is not None:
        (seq / "gt").mkdir()
        (seq / "gt" / "gt.txt").write_text("".join(line + "\n" for line in gt_lines))


def test_records_instances_and_sequences(tmp_path):
    _seq(tmp_path, "A", 2, [
        "1,1,10,10,20,30,1,1,1.0",     # pedestrian
        "1,2,-5,20,15,10,1,1,0.8",     # partly outside: clipped to x1 = 0
        "2,1,12,10,20,30,1,1,0.2",     # low visibility: ignored when min_visibility = 0.5
        "2,3,40,5,10,10,0,7,1.0",      # static person, consider flag 0: ignored
        "2,4,200,5,10,10,1,1,1.0",     # outside the image: dropped
    ])
    _seq(tmp_path, "B", 1, None)      # a test sequence without gt
    ds = build_dataset({"type": "MOTChallengeDataset", "root": str(tmp_path), "min_visibility": 0.5, "test_mode": True})
    assert ds.classes == ("pedestrian",) and len(ds) == 3
    assert ds.sequences() == {"A": [0, 1], "B": [2]}
    r = ds.get_data_info(0)
    assert (r["seq"], r["frame_id"], r["width"], r["height"]) == ("A", 1, 80, 60)
    assert r["img_path"].endswith("A/img1/000001.jpg")
    assert [i["bbox"] for i in r["instances"]] == [[10, 10, 30, 40], [0, 20, 10, 30]]
    assert [i["ignore_flag"] for i in r["instances"]] == [False, False]
    r = ds.get_data_info(1)
    assert [(i["bbox"], i["ignore_flag"]) for i in r["instances"]] == [([12, 10, 32, 40], True), ([40, 5, 50, 15], True)]
    assert ds.get_data_info(2)["instances"] == [] and not ds.sequence_info["B"]["has_gt"]
    coco = ds.coco_gt()
    assert len(coco["images"]) == 3 and sum(a["iscrowd"] for a in coco["annotations"]) == 2
    only_b = build_dataset({"type": "MOTChallengeDataset", "root": str(tmp_path), "sequences": ["B"], "test_mode": True})
    assert len(only_b) == 1
    train = build_dataset({"type": "MOTChallengeDataset", "root": str(tmp_path), "min_visibility": 0.5})
    assert [d["frame_id"] for d in train.data_list] == [1]  # frames with only ignored boxes or none: dropped
    train = build_dataset({"type": "MOTChallengeDataset", "root": str(tmp_path)})
    assert [(d["seq"], d["frame_id"]) for d in train.data_list] == [("A", 1), ("A", 2)]


def test_errors_name_the_path(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'none'}: MOTChallenge data folder not found"):
        build_dataset({"type": "MOTChallengeDataset", "root": str(tmp_path / "none")})
    _seq(tmp_path, "A", 2, [])
    (tmp_path / "A" / "img1" / "000002.jpg").unlink()
    with pytest.raises(DataError, match="000002.jpg: frame not found"):
        build_dataset({"type": "MOTChallengeDataset", "root": str(tmp_path)})
    with pytest.raises(DataError, match="Z: sequence not found"):
        build_dataset({"type": "MOTChallengeDataset", "root": str(tmp_path), "sequences": ["Z"]})


def test_is_mot_preset():
    from det.core.config import load_preset
    from det.core.tracking.evaluate import is_mot_preset

    cfg = load_preset("mot/bytetrack_rtmdet_tiny_synth")
    assert is_mot_preset(cfg)
    assert not is_mot_preset({**cfg, "tracker": None})
    assert not is_mot_preset(load_preset("demo/rtmdet_tiny"))
    assert not is_mot_preset(load_preset("trackers/bytetrack"))
