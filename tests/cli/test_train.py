"""`det train` end to end on the RTMDet demo preset shrunk to 64 px images (seconds per run)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, TINY_DEMO_OVERRIDES

# an lr schedule that does not depend on max_epochs, so a 1-epoch run can be resumed to 2
FIXED_SCHEDULE = ("train.schedulers=[{type: LinearLR, start_factor: 0.1, by_epoch: false, begin: 0, end: 3}]",)
VOLATILE = {"time", "data_time", "memory"}


def _args(*extra: str) -> list[str]:
    out = []
    for item in (*TINY_DEMO_OVERRIDES, *FIXED_SCHEDULE, *extra):
        out += ["--set", item]
    return out


def _records(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in VOLATILE} for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_train_outputs_and_exact_resume(tmp_path, det_inproc):
    a, b = tmp_path / "a", tmp_path / "b"
    r = det_inproc("train", "demo/rtmdet_tiny", "--work-dir", a, "--deterministic", "--device", "cpu",
                   *_args("train.max_epochs=2"))
    assert r.returncode == 0, r.stderr
    for name in ("preset.yaml", "log.jsonl", "epoch_1.pt", "epoch_2.pt", "last.pt", "best_coco_bbox_mAP.pt", "metrics.json"):
        assert (a / name).is_file(), name
    assert "coco/bbox_mAP" in r.stdout
    metrics = json.loads((a / "metrics.json").read_text())
    assert metrics["epoch"] == 2 and "coco/bbox_mAP_50" in metrics["metrics"]

    r = det_inproc("train", "demo/rtmdet_tiny", "--work-dir", b, "--deterministic", "--device", "cpu", *_args("train.max_epochs=1"))
    assert r.returncode == 0, r.stderr
    r = det_inproc("train", "demo/rtmdet_tiny", "--work-dir", b, "--deterministic", "--device", "cpu", *_args("train.max_epochs=2"))
    assert r.returncode == 2 and "--resume" in r.stderr  # an existing run is never overwritten silently
    r = det_inproc("train", "demo/rtmdet_tiny", "--work-dir", b, "--resume", "--deterministic", "--device", "cpu",
                   *_args("train.max_epochs=2"))
    assert r.returncode == 0, r.stderr
    ca, cb = torch.load(a / "last.pt", weights_only=True), torch.load(b / "last.pt", weights_only=True)
    for key in ("state_dict", "raw_state_dict"):
        for name, value in ca[key].items():
            assert torch.equal(value, cb[key][name]), f"{key}.{name} differs after resume"
    assert _records(a / "log.jsonl") == _records(b / "log.jsonl")


@pytest.mark.slow
def test_absurd_lr_stops_with_invalid_loss_and_keeps_checkpoint(tmp_path, det_inproc, tiny_checkpoint):
    work = tmp_path / "run"
    work.mkdir()
    shutil.copy(tiny_checkpoint, work / "last.pt")
    before = (work / "last.pt").read_bytes()
    r = det_inproc("train", "demo/rtmdet_tiny", "--resume", work / "last.pt", "--work-dir", work, "--device", "cpu",
                   *_args("train.max_epochs=3", "train.optimizer.lr=1.0e+12", "train.schedulers=[]"))
    assert r.returncode == 3, r.stderr
    assert "invalid loss at epoch 2, iteration" in r.stderr and "last good checkpoint" in r.stderr
    assert (work / "last.pt").read_bytes() == before
    assert not (work / "epoch_2.pt").exists()


def test_missing_coco_data_points_to_demo_presets(tmp_path, det_inproc):
    preset = tmp_path / "coco.yaml"
    preset.write_text(
        f"_base_: {REPO / 'presets/demo/rtmdet_tiny.yaml'}\n"
        "data:\n  train:\n    dataset: {_delete_: true, type: CocoDataset, data_root: data/coco/,\n"
        "      ann_file: annotations/instances_train2017.json, data_prefix: train2017/}\n")
    r = det_inproc("train", preset, "--work-dir", tmp_path / "w", "--device", "cpu")
    assert r.returncode == 2
    assert "instances_train2017.json" in r.stderr and "demo preset" in r.stderr


def test_resume_argument_forms(tmp_path, det_inproc):
    r = det_inproc("train", "demo/rtmdet_tiny", "--work-dir", tmp_path, "--resume")
    assert r.returncode == 2 and "no checkpoint" in r.stderr
    r = det_inproc("train", "demo/rtmdet_tiny", "--resume", tmp_path / "nope.pt", "--work-dir", tmp_path)
    assert r.returncode == 2 and "nope.pt: checkpoint not found" in r.stderr
    r = det_inproc("train", "demo/rtmdet_tiny", "extra.pt", "--work-dir", tmp_path)
    assert r.returncode == 2 and "unexpected extra argument" in r.stderr
    r = det_inproc("train", "demo/rtmdet_tiny", "--work-dir", tmp_path, "--device", "tpu")
    assert r.returncode == 2 and "--device tpu" in r.stderr
