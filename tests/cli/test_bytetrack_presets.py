"""The two ByteTrack presets with a YOLOX detector through the CLI at tiny sizes, on
`det synth mot` sequences: `det flops`, one-iteration `det train`, `det test` (detector +
ByteTrack -> HOTA/MOTA/IDF1 equal to `evaluate_mot` on the written tracks), `det infer`; the
MMDetection preset also from COCO files of `det convert mot --split-train` and through
`det convert mmdet-weights` of a `detector.`-prefixed (MMDetection MOT) checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from det.core.evaluation.mot import evaluate_mot
from det.core.tracking.synth import generate_mot

SYNTH = "mot/bytetrack_yolox_tiny_synth"
MMDET = "bytetrack/bytetrack_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval"
# YOLOX-X narrowed to YOLOX-tiny-like widths so that one CPU iteration is quick
NARROW = ["model.backbone.widen_factor=0.0625", "model.backbone.deepen_factor=0.33", "model.neck.in_channels=[16,32,64]",
          "model.neck.out_channels=16", "model.neck.num_csp_blocks=1", "model.bbox_head.in_channels=16",
          "model.bbox_head.feat_channels=16"]
# its 1440x800 inputs scaled down to 160x96 (pipeline steps by index, as in the preset)
SMALL = ["data.train.pipeline.2.img_scale=[160,96]", "data.train.pipeline.3.border=[-80,-48]",
         "data.train.pipeline.4.img_scale=[160,96]", "data.train.pipeline.7.scale=[160,96]",
         "data.val.pipeline.1.scale=[160,96]", "data.test.pipeline.1.scale=[160,96]",
         "model.data_preprocessor.batch_augments.0.random_size_range=[96,160]"]


@pytest.fixture(scope="module")
def seqs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bytetrack") / "seqs"
    generate_mot(root, seqs=2, frames=6, seed=4, width=96, height=72, progress=False)
    return root


def _loader_sets(root: Path, *splits: str) -> list[str]:
    out = []
    for split in splits:
        out += [f"data.{split}.dataset.root={root}", f"data.{split}.num_workers=0", f"data.{split}.batch_size=4"]
    return out


def _args(sets: list[str]) -> list[str]:
    return [x for s in sets for x in ("--set", s)]


def _test_tracks(det_inproc, ckpt: Path, work: Path, root: Path, *extra: str) -> dict:
    r = det_inproc("test", ckpt, "--work-dir", work, "--device", "cpu", "--json", *extra)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    ref = evaluate_mot(root, res["tracks_dir"])
    for key in ("HOTA", "MOTA", "IDF1"):
        assert res["metrics"][key] == pytest.approx(ref[key], abs=1e-9)
    assert sorted(p.name for p in Path(res["tracks_dir"]).iterdir()) == ["SYNTH-01.txt", "SYNTH-02.txt"]
    return res


@pytest.mark.slow
def test_yolox_tiny_synth_preset_trains_tests_tracks_and_infers(det_inproc, seqs, tmp_path):
    sets = _loader_sets(seqs, "train", "val", "test") + [
        "data.train.persistent_workers=false", "train.max_epochs=1", "train.switch_epoch=0", "train.val_interval=1",
        "train.log_interval=1", "train.checkpoint.interval=1", "train.amp.enabled=false"]
    r = det_inproc("flops", SYNTH, "--shape", "64", "64", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"] / 1e6 == pytest.approx(5.03, rel=0.01)  # YOLOX-tiny with 1 class
    work = tmp_path / "w"
    r = det_inproc("train", SYNTH, "--work-dir", work, "--device", "cpu", *_args(sets))
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert any("loss_l1" in rec for rec in records)  # the switch epoch ran
    res = _test_tracks(det_inproc, work / "last.pt", tmp_path / "t", seqs)
    assert res["num_images"] == 12 and {"HOTA", "MOTA", "IDF1", "IDSW"} <= res["metrics"].keys()
    r = det_inproc("infer", seqs / "SYNTH-01" / "img1", "--weights", work / "last.pt", "--out-dir", tmp_path / "o",
                   "--device", "cpu", "--track", "trackers/bytetrack", "--no-vis")
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_mmdet_bytetrack_preset_trains_on_converted_coco_and_converts_checkpoints(det_inproc, seqs, tmp_path):
    mot, ann = tmp_path / "MOT", tmp_path / "MOT" / "annotations"
    mot.mkdir()
    (mot / "train").symlink_to(seqs)  # det convert mot reads ROOT/train/SEQ
    r = det_inproc("convert", "mot", mot, "--out-dir", ann, "--split-train")
    assert r.returncode == 0, r.stderr
    datasets = [f"data.train.dataset.datasets.{i}.{k}" for i in range(3) for k in ("data_root", "ann_file", "data_prefix")]
    values = [str(mot), str(ann / "half-train_cocoformat.json"), "train/"] * 3
    sets = NARROW + SMALL + [f"{k}={v}" for k, v in zip(datasets, values)] + [
        f"data.val.dataset.root={seqs}", f"data.test.dataset.root={seqs}", "data.test.num_workers=0",
        "data.val.num_workers=0", "data.train.num_workers=0", "data.train.persistent_workers=false",
        "data.train.batch_size=4", "data.val.batch_size=4", "train.max_epochs=1", "train.val_interval=1",
        "train.val_begin=1", "train.log_interval=1", "train.checkpoint.interval=1", "train.amp.enabled=false"]
    r = det_inproc("flops", MMDET, "--shape", "64", "64", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"] / 1e6 == pytest.approx(99.0, rel=0.015)  # YOLOX-X, 1 class
    work = tmp_path / "w"
    r = det_inproc("train", MMDET, "--work-dir", work, "--device", "cpu", *_args(sets))
    assert r.returncode == 0, r.stderr
    trained = torch.load(work / "last.pt", map_location="cpu", weights_only=True)
    mm = {f"detector.{k}": v for k, v in trained["state_dict"].items()}  # MMDetection's ByteTrack layout
    torch.save({"state_dict": mm, "meta": {"dataset_meta": {"classes": ["pedestrian"]}}}, tmp_path / "bt.pth")
    r = det_inproc("convert", "mmdet-weights", tmp_path / "bt.pth", tmp_path / "bt.pt", "--preset", MMDET, "--strict",
                   "--json", *_args(NARROW + SMALL + [f"data.test.dataset.root={seqs}", "data.test.num_workers=0",
                                              "model.test_cfg.score_thr=0.0"]))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["tensors"] == len(trained["state_dict"])
    a = _test_tracks(det_inproc, work / "last.pt", tmp_path / "t1", seqs, "--set", "model.test_cfg.score_thr=0.0")
    b = _test_tracks(det_inproc, tmp_path / "bt.pt", tmp_path / "t2", seqs)
    assert a["metrics"] == b["metrics"]  # the converted checkpoint tracks exactly as the original
