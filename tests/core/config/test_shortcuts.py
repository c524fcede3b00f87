"""`det train --data/--epochs/--batch-size/--img-size` expand to `--set` lines; `_base_` takes
bundled names; a checkpoint is accepted wherever a preset is."""
from __future__ import annotations

import pytest
import torch

from det.core.config import apply_overrides, load_preset
from det.core.config.shortcuts import data_overrides, img_size_overrides, set_line
from det.core.errors import ConfigError, DataError

from tests.cli.first_hour_data import CLASSES, make_coco_folder, make_voc, make_yolo


def _applied(preset: str, lines: list[str]) -> dict:
    return apply_overrides(load_preset(preset), lines)


def test_coco_folder_sets_every_split_classes_and_heads(tmp_path):
    root = make_coco_folder(tmp_path / "d", num_train=2, num_val=1)
    cfg = _applied("demo/faster_rcnn_r18", data_overrides(load_preset("demo/faster_rcnn_r18"), root))
    assert cfg["data"]["classes"] == list(CLASSES)
    assert cfg["model"]["roi_head"]["bbox_head"]["num_classes"] == 2
    train, val = cfg["data"]["train"]["dataset"], cfg["data"]["val"]["dataset"]
    assert train == {"type": "CocoDataset", "ann_file": str(root / "annotations" / "instances_train.json"),
                     "data_prefix": str(root / "train")}
    assert val["test_mode"] is True and val["ann_file"].endswith("instances_val.json")
    from det.core.data import build_dataset

    ds = build_dataset({"dataset": train, "pipeline": cfg["data"]["train"]["pipeline"]})
    assert len(ds) == 2 and list(ds.classes) == list(CLASSES)


def test_coco_file_yolo_and_voc(tmp_path):
    root = make_coco_folder(tmp_path / "c", num_train=2, num_val=1)
    lines = data_overrides(load_preset("demo/rtmdet_tiny"), root / "annotations" / "instances_train.json")
    cfg = _applied("demo/rtmdet_tiny", lines)
    assert cfg["data"]["val"]["dataset"]["ann_file"] == cfg["data"]["train"]["dataset"]["ann_file"]
    yolo = make_yolo(tmp_path / "y")
    cfg = _applied("demo/rtmdet_tiny", data_overrides(load_preset("demo/rtmdet_tiny"), yolo, tmp_path / "conv"))
    assert cfg["data"]["classes"] == ["box", "disc"] and (tmp_path / "conv" / "train.json").is_file()
    voc = make_voc(tmp_path / "v")
    cfg = _applied("demo/rtmdet_tiny", data_overrides(load_preset("demo/rtmdet_tiny"), voc))
    assert cfg["data"]["train"]["dataset"]["type"] == "VOCDataset" and cfg["data"]["classes"] == ["box", "disc"]
    assert cfg["model"]["bbox_head"]["num_classes"] == 2
    with pytest.raises(DataError, match="not found"):
        data_overrides({}, tmp_path / "missing")


def test_img_size_scales_every_pipeline_size_from_the_test_resize():
    cfg = load_preset("rtmdet_tiny")  # COCO recipe at 640: Mosaic 640, RandomResize 1280, crop 640
    lines = img_size_overrides(cfg, (320, 320))
    out = apply_overrides(cfg, lines)
    steps = {s["type"]: s for s in out["data"]["train"]["pipeline"]}
    assert steps["Mosaic"]["img_scale"] == [320, 320] and steps["RandomResize"]["scale"] == [640, 640]
    assert {s["type"]: s for s in out["data"]["val"]["pipeline"]}["Resize"]["scale"] == [320, 320]


def test_img_size_reaches_inside_random_choice():
    cfg = load_preset("dino/dino-4scale_r50_8xb2-12e_coco")  # test resize (1333, 800)
    out = apply_overrides(cfg, img_size_overrides(cfg, (400, 1333)))  # half the height, same width
    first, second = out["data"]["train"]["pipeline"][3]["transforms"]
    # keep-ratio (short, long) pairs: the short edge halves, the long edge stays
    assert first[0]["scales"][0] == [240, 1333] and first[0]["scales"][-1] == [400, 1333]
    assert second[0]["scales"] == [[200, 4200], [250, 4200], [300, 4200]]
    assert second[1]["crop_size"] == [192, 300]  # absolute_range edges: the smaller factor (0.5) for both
    assert second[2]["scales"] == first[0]["scales"]
    assert {s["type"]: s for s in out["data"]["val"]["pipeline"]}["Resize"]["scale"] == [1333, 400]


def test_set_line_round_trips_through_apply_overrides():
    value = {"type": "CocoDataset", "ann_file": "/a b/x.json", "data_prefix": "/a b"}
    assert apply_overrides({}, [set_line("data.train.dataset", value)])["data"]["train"]["dataset"] == value


def test_base_accepts_bundled_names(tmp_path):
    (tmp_path / "mine.yaml").write_text("_base_: demo/rtmdet_tiny\ntrain: {max_epochs: 2}\n")
    cfg = load_preset(tmp_path / "mine.yaml")
    assert cfg["train"]["max_epochs"] == 2 and cfg["model"]["type"] == load_preset("demo/rtmdet_tiny")["model"]["type"]
    (tmp_path / "bad.yaml").write_text("_base_: demo/no_such_preset\n")
    with pytest.raises(ConfigError, match="_base_ not found: demo/no_such_preset"):
        load_preset(tmp_path / "bad.yaml")


def test_checkpoint_where_a_preset_goes(tmp_path):
    preset = load_preset("demo/rtmdet_tiny")
    torch.save({"state_dict": {}, "preset": preset}, tmp_path / "x.pt")
    assert load_preset(tmp_path / "x.pt", ["train.max_epochs=3"])["train"]["max_epochs"] == 3
    torch.save({"state_dict": {}, "preset": preset}, tmp_path / "renamed.bin")  # a zip archive by content
    assert load_preset(tmp_path / "renamed.bin")["model"] == preset["model"]
    torch.save({"state_dict": {}}, tmp_path / "bare.pt")
    with pytest.raises(ConfigError, match="carries no preset"):
        load_preset(tmp_path / "bare.pt")
    (tmp_path / "noise.yaml").write_bytes(bytes(range(128, 256)))
    with pytest.raises(ConfigError, match="not a text"):
        load_preset(tmp_path / "noise.yaml")
