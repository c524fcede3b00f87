"""A new user's first hour: own data in one command (`det train --data`), reports drawn, runs/
outputs, a checkpoint wherever a preset goes, strict JSON, tunable tracking, pipelines."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import pytest

from tests.cli.first_hour_data import CLASSES, make_coco_folder
from tests.conftest import run_det

QUIET = ("--set", "data.train.num_workers=0", "--set", "data.val.num_workers=0", "--set", "data.test.num_workers=0",
         "--set", "data.val.batch_size=2", "--set", "data.test.batch_size=2", "--set", "train.log_interval=1",
         "--set", "train.val_interval=1", "--set", "train.checkpoint.interval=1")


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    """`det train demo/rtmdet_tiny --data COCO_FOLDER --epochs 1 --batch-size 2 --img-size 64 64`
    in a fresh folder (default outputs: runs/train/1)."""
    cwd = tmp_path_factory.mktemp("first_hour")
    data = make_coco_folder(cwd / "mydata")
    r = run_det("train", "demo/rtmdet_tiny", "--data", data, "--epochs", "1", "--batch-size", "2", "--img-size", "64", "64",
                "--device", "cpu", *QUIET, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return cwd, data, r


@pytest.mark.slow
def test_train_on_own_coco_folder_with_shortcuts_and_reports(own_run):
    cwd, data, r = own_run
    work = cwd / "runs" / "train" / "1"
    assert "outputs: runs/train/1" in r.stderr
    assert '--set "data.classes=[box, disc]"' in r.stderr and "--set train.max_epochs=1" in r.stderr
    ckpt = __import__("torch").load(work / "last.pt", weights_only=True)
    preset = ckpt["preset"]
    assert preset["data"]["classes"] == list(CLASSES) and preset["model"]["bbox_head"]["num_classes"] == 2
    assert preset["data"]["train"]["dataset"]["ann_file"].endswith("instances_train.json")
    assert preset["data"]["train"]["batch_size"] == 2 and preset["train"]["max_epochs"] == 1
    assert preset["data"]["val"]["pipeline"][2]["scale"] == [64, 64]  # 192 -> 64 via --img-size
    for name in ("results.png", "pr_curve.png", "per_class_ap.csv", "confusion_matrix.png", "val_predictions.jpg"):
        assert (work / name).is_file(), name
    assert cv2.imread(str(work / "results.png")) is not None
    metrics = json.loads((work / "metrics.json").read_text())
    assert set(metrics["reports"]) >= {"results", "pr_curve", "per_class_ap", "confusion_matrix", "val_predictions"}


@pytest.mark.slow
def test_test_reports_data_record_no_overwrite_and_strict_json(own_run):
    cwd, data, _ = own_run
    ckpt = cwd / "runs" / "train" / "1" / "last.pt"
    r = run_det("test", ckpt, "--device", "cpu", cwd=cwd)
    assert r.returncode == 0, r.stderr
    work = cwd / "runs" / "test" / "1"
    assert "outputs: runs/test/1" in r.stderr and "per class" in r.stdout
    text = (work / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    metrics = json.loads(text)
    assert metrics["data"]["ann_file"].endswith("instances_val.json") and metrics["data"]["num_images"] == 4
    assert metrics["data"]["classes"] == list(CLASSES)
    rows = list(csv.DictReader((work / "per_class_ap.csv").open()))
    assert [row["class"] for row in rows] == list(CLASSES)
    assert len(rows) == len(metrics["per_class_ap"])
    for row, rec in zip(rows, metrics["per_class_ap"]):
        assert (row["AP"] == "") == (rec["AP"] is None)
    for name in ("pr_curve.png", "confusion_matrix.png", "val_predictions.jpg"):
        assert cv2.imread(str(work / name)) is not None, name
    # a second run gets the next folder; an explicit folder is never overwritten silently
    assert run_det("test", ckpt, "--device", "cpu", "--no-plots", cwd=cwd).returncode == 0
    assert (cwd / "runs" / "test" / "2" / "metrics.json").is_file()
    assert not (cwd / "runs" / "test" / "2" / "pr_curve.png").exists()
    again = run_det("test", ckpt, "--device", "cpu", "--work-dir", work, cwd=cwd)
    assert again.returncode == 2 and "metrics.json: already exists" in again.stderr
    assert json.loads((work / "metrics.json").read_text()) == metrics


@pytest.mark.slow
def test_checkpoint_wherever_a_preset_goes(own_run):
    cwd, _, _ = own_run
    ckpt = cwd / "runs" / "train" / "1" / "last.pt"
    r = run_det("flops", ckpt, "--img-size", "64", "64", "--json", cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"] > 0
    r = run_det("config", "validate", ckpt, cwd=cwd)
    assert r.returncode == 0 and f"{ckpt}: valid" in r.stdout, r.stderr
    r = run_det("config", "show", ckpt, "--json", "--no-check", cwd=cwd)
    assert r.returncode == 0 and json.loads(r.stdout)["data"]["classes"] == list(CLASSES)
    # a binary file that is not a checkpoint: a one-line user error, not an internal one
    bad = cwd / "noise.bin"
    bad.write_bytes(bytes(range(256)) * 4)
    r = run_det("flops", bad, cwd=cwd)
    assert r.returncode == 2 and "noise.bin" in r.stderr and "internal error" not in r.stderr


@pytest.mark.slow
def test_infer_jsonl_twice_identical_and_writes_nothing(own_run):
    cwd, data, _ = own_run
    ckpt = cwd / "runs" / "train" / "1" / "last.pt"
    args = ("infer", data / "val", "--weights", ckpt, "--format", "jsonl", "--device", "cpu")
    before = sorted(p for p in cwd.rglob("*"))
    first, second = run_det(*args, cwd=cwd), run_det(*args, cwd=cwd)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout and len(first.stdout.splitlines()) == 4
    assert sorted(p for p in cwd.rglob("*")) == before  # nothing written without --out-dir/--save-vis
    r = run_det(*args, "--save-vis", cwd=cwd)
    assert r.returncode == 0 and len(list((cwd / "runs" / "infer" / "1" / "vis").glob("*.jpg"))) == 4


@pytest.mark.slow
def test_infer_tracking_is_tunable(own_run, tmp_path):
    cwd, data, _ = own_run
    ckpt = cwd / "runs" / "train" / "1" / "last.pt"
    base = ("infer", data / "val", "--weights", ckpt, "--device", "cpu", "--no-vis", "--no-pred", "--json")
    r = run_det(*base, "--track", "bytetrack", "--set", "tracker.init_track_thr=0.2", cwd=cwd)
    assert r.returncode == 0, r.stderr
    tracker = json.loads(r.stdout)["tracker"]
    assert tracker["type"] == "ByteTrack" and tracker["init_track_thr"] == 0.2 and tracker["obj_score_thr"] == 0.6
    own = tmp_path / "my_tracker.yaml"
    own.write_text("tracker: {type: SORT, obj_score_thr: 0.05}\n")
    r = run_det(*base, "--track", own, "--set", "tracker.obj_score_thr=0.01", cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tracker"] == {"type": "SORT", "obj_score_thr": 0.01}
    r = run_det(*base, "--track", "bytetrack", "--set", "tracker.no_such_key=1", cwd=cwd)
    assert r.returncode == 2 and "tracker.no_such_key" in r.stderr
    r = run_det(*base, "--set", "tracker.init_track_thr=0.2", cwd=cwd)
    assert r.returncode == 2 and "--track" in r.stderr


def test_detection_floor_keeps_low_score_boxes_for_bytetrack():
    from det.core.inference.tracker_cfg import detection_floor, resolve_tracker

    section = resolve_tracker("bytetrack", None, [])
    assert detection_floor(section, 0.3) == pytest.approx(0.1)  # ByteTrack's low_score_thr
    assert detection_floor({"type": "SORT"}, 0.3) == 0.3


def test_mot_search_best_line_applies_to_infer_tracker():
    from det.core.inference.tracker_cfg import resolve_tracker, split_tracker_sets
    from det.core.tracking import build_tracker
    from det.core.tracking.search import best_set_line

    line = best_set_line(["tracker.match_iou_thr", "tracker.obj_score_thr"],
                         {"tracker.match_iou_thr": 0.3, "tracker.obj_score_thr": 0.5})
    sets = [part.strip() for part in line.split("--set") if part.strip()]
    detector_sets, tracker_sets = split_tracker_sets(sets)
    assert not detector_sets
    section = resolve_tracker("trackers/bytetrack", None, tracker_sets)
    assert section["match_iou_thr"] == 0.3 and section["obj_score_thr"] == 0.5
    build_tracker(section)


def test_synth_help_names_every_generator(det_inproc):
    r = det_inproc("synth", "--help")
    assert "shapes" in r.stdout and "mot" in r.stdout


def test_config_validate_keeps_the_file_name(det_inproc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("my.yaml").write_text("_base_: demo/rtmdet_tiny\n")  # a bundled name as a base
    r = det_inproc("config", "validate", "my.yaml", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["preset"] == "my.yaml"
    r = det_inproc("config", "validate", "my.yaml")
    assert r.stdout.startswith("my.yaml: valid"), r.stdout


def test_optimize_anchors_set_line_fits_the_preset():
    from det.core.analysis.anchors import preset_set_line
    from det.core.config import apply_overrides, load_preset
    from det.core.models import build_detector

    anchors = [[10.0, 20.0], [20.0, 10.0], [15.0, 15.0], [30.0, 60.0], [60.0, 30.0], [40.0, 40.0]]
    line, note = preset_set_line(anchors, load_preset("demo/rtmdet_tiny")["model"])
    assert line is None and "anchor-free" in note
    cfg = load_preset("retinanet_r50_fpn")  # ratios [0.5, 1, 2] per stride
    line, note = preset_set_line(anchors, cfg["model"])
    assert line.startswith("--set model.bbox_head.anchor_generator.ratios=")
    applied = apply_overrides(cfg, [line[len("--set "):]])
    ratios = applied["model"]["bbox_head"]["anchor_generator"]["ratios"]
    assert len(ratios) == 3 and ratios == sorted(ratios) and ratios[0] < 1 < ratios[-1]
    build_detector(applied["model"])  # the line applies to the preset it analysed
