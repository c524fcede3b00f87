"""`det test` on a MOT preset (tracker section + MOTChallengeDataset): detector per frame,
tracker per sequence, MOTChallenge txt files, HOTA/CLEAR/Identity equal to evaluate_mot on
the written files; exit 2 on bad data and options."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from det.core.evaluation.mot import METRIC_KEYS, evaluate_mot
from det.core.tracking.synth import generate_mot

PRESET = "mot/bytetrack_rtmdet_tiny_synth"


def _sets(root) -> list[str]:
    return [f"data.test.dataset.root={root}", f"data.val.dataset.root={root}", f"data.train.dataset.root={root}",
            "data.test.num_workers=0", "data.test.batch_size=4"]


@pytest.fixture(scope="module")
def mot_case(tmp_path_factory):
    """Two 8-frame sequences and a random-weight checkpoint of the MOT preset."""
    from det.core.config import load_preset
    from det.core.models import build_detector

    tmp = tmp_path_factory.mktemp("mot_test")
    generate_mot(tmp / "seqs", seqs=2, frames=8, seed=3, width=96, height=72, progress=False)
    cfg = load_preset(PRESET, _sets(tmp / "seqs"))
    torch.manual_seed(0)
    model = build_detector(cfg["model"])
    ckpt = tmp / "model.pt"
    torch.save({"state_dict": model.state_dict(), "preset": cfg, "meta": {"classes": cfg["data"]["classes"]}}, ckpt)
    return tmp, ckpt, type(model)


def _oracle_predict(self, inputs, samples):
    """Stand-in for the detector: each frame's non-ignored gt boxes (undone network scaling)."""
    from det.core.structures import Instances

    preds = []
    for s in samples:
        boxes = s.gt.bboxes.clone().float()
        if s.gt.ignore is not None:
            boxes = boxes[~s.gt.ignore]
        w, h = s.scale_factor
        boxes /= torch.tensor([w, h, w, h], dtype=boxes.dtype)
        preds.append(Instances(bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long),
                               scores=torch.full((len(boxes),), 0.9)))
    return preds


def load_preset_tracker(ckpt) -> dict:
    from det.core.fileio import load_checkpoint

    return load_checkpoint(ckpt)["preset"]["tracker"]


def _track_gt_directly(root, tracker_cfg: dict) -> dict:
    """Pedestrian gt boxes (consider flag set, clipped to the image) as detections, tracked
    with run_tracker and scored in memory: what det test must reproduce with the oracle."""
    from det.core.evaluation.mot import evaluate_sequences, preprocess_sequence
    from det.core.tracking import run_tracker
    from det.core.data.mot_io import find_sequences, read_mot_txt, read_seqinfo

    items = []
    for seq in find_sequences(root):
        info = read_seqinfo(seq)
        n, w, h = info["seqLength"], info["imWidth"], info["imHeight"]
        gt = read_mot_txt(seq / "gt" / "gt.txt", "gt")
        x1, y1 = np.maximum(gt[:, 2], 0), np.maximum(gt[:, 3], 0)
        x2, y2 = np.minimum(gt[:, 2] + gt[:, 4], w), np.minimum(gt[:, 3] + gt[:, 5], h)
        keep = (gt[:, 7] == 1) & (gt[:, 6] != 0) & (x2 - x1 >= 1) & (y2 - y1 >= 1)
        dets = {f: np.empty((0, 5)) for f in range(1, n + 1)}
        for f in range(1, n + 1):
            m = keep & (gt[:, 0] == f)
            dets[f] = np.column_stack([x1[m], y1[m], x2[m], y2[m], np.full(m.sum(), 0.9)])
        rows = run_tracker(tracker_cfg, dets, n)
        res = np.full((len(rows), 10), -1.0)
        res[:, :7] = rows
        items.append((seq.name, preprocess_sequence(gt, res, n)))
    return evaluate_sequences(items)


def _check_against_files(summary: dict, root, tracks) -> None:
    ref = evaluate_mot(root, tracks)
    assert set(METRIC_KEYS) <= summary["metrics"].keys()
    for key in METRIC_KEYS:
        assert summary["metrics"][key] == ref[key], key
    assert summary["sequences"].keys() == ref["sequences"].keys() == {"SYNTH-01", "SYNTH-02"}
    for seq, values in ref["sequences"].items():
        for key in METRIC_KEYS:
            assert summary["sequences"][seq][key] == values[key], (seq, key)


@pytest.mark.slow
def test_mot_preset_tracks_and_scores_like_evaluate_mot(mot_case, det_inproc, monkeypatch):
    tmp, ckpt, model_cls = mot_case
    root = tmp / "seqs"
    # 1. detector replaced by the frames' gt: the tracker must rebuild the tracks (frame order,
    #    sequence grouping and box coordinates all matter), and the numbers are those of the files
    monkeypatch.setattr(model_cls, "predict", _oracle_predict)
    r = det_inproc("test", ckpt, "--work-dir", tmp / "oracle", "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    tracks = tmp / "oracle" / "tracks"
    assert summary["tracks_dir"] == str(tracks) and summary["num_images"] == 16
    assert sorted(p.name for p in tracks.iterdir()) == ["SYNTH-01.txt", "SYNTH-02.txt"]
    _check_against_files(summary, root, tracks)
    # the same tracker on the gt boxes read straight from gt.txt gives the same numbers
    expected = _track_gt_directly(root, load_preset_tracker(ckpt))
    for key in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN"):
        assert summary["metrics"][key] == pytest.approx(expected[key], abs=1e-6), key
    assert summary["metrics"]["HOTA"] > 0.5 and summary["metrics"]["MOTA"] > 0.5, summary["metrics"]
    assert json.loads((tmp / "oracle" / "metrics.json").read_text())["metrics"] == summary["metrics"]
    # the detections written beside the tracks are the detector's boxes, in det.txt format
    from det.core.data.mot_io import read_mot_txt

    dets = read_mot_txt(tmp / "oracle" / "detections" / "SYNTH-01.txt", "det")
    gt = read_mot_txt(root / "SYNTH-01" / "gt" / "gt.txt", "gt")
    assert set(dets[:, 0].astype(int)) <= set(range(1, 9)) and len(dets) > 0
    assert np.all(dets[:, 1] == -1) and np.allclose(dets[:, 6], 0.9)
    assert len(dets) <= len(gt)

    # 2. the real (random-weight) detector, PRESET CKPT form, tracks into --out DIR, a table
    monkeypatch.undo()
    sets = [x for s in [*_sets(root), "model.test_cfg.score_thr=0.0", "tracker.obj_score_thr=0.001",
                        "tracker.init_track_thr=0.001", "tracker.low_score_thr=0.0"] for x in ("--set", s)]
    out = tmp / "tracks_out"
    r = det_inproc("test", PRESET, ckpt, *sets, "--out", out, "--work-dir", tmp / "real", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    for word in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "SYNTH-01", "SYNTH-02", "COMBINED", "frames/s"):
        assert word in r.stdout, word
    assert read_mot_txt(out / "SYNTH-02.txt", "result").shape[0] > 0  # random boxes still become tracks
    _check_against_files(json.loads((tmp / "real" / "metrics.json").read_text()), root, out)
    # never overwrite earlier tracks without --force (a new work dir: its metrics.json is not in the way)
    r = det_inproc("test", PRESET, ckpt, *sets, "--out", out, "--work-dir", tmp / "real2", "--device", "cpu")
    assert r.returncode == 2 and "already exists (use --force" in r.stderr and "SYNTH-01.txt" in r.stderr


def test_mot_preset_errors_exit_2_with_one_line(mot_case, det_inproc, tmp_path):
    tmp, ckpt, _ = mot_case
    missing = tmp_path / "nowhere"
    r = det_inproc("test", PRESET, ckpt, "--set", f"data.test.dataset.root={missing}", "--device", "cpu",
                   "--work-dir", tmp_path / "w")
    assert r.returncode == 2 and str(missing) in r.stderr and "det synth mot" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "demo preset" not in r.stderr
    # a missing frame is named
    generate_mot(tmp_path / "seqs", seqs=1, frames=3, seed=0, width=64, height=64, progress=False)
    (tmp_path / "seqs" / "SYNTH-01" / "img1" / "000002.jpg").unlink()
    r = det_inproc("test", PRESET, ckpt, "--set", f"data.test.dataset.root={tmp_path / 'seqs'}", "--device", "cpu",
                   "--work-dir", tmp_path / "w")
    assert r.returncode == 2 and "000002.jpg: frame not found" in r.stderr
    # options that have no meaning for tracking, and a search grid instead of one value
    r = det_inproc("test", ckpt, "--tta", "--device", "cpu", "--work-dir", tmp_path / "w")
    assert r.returncode == 2 and "--tta: not available for a MOT preset" in r.stderr
    r = det_inproc("test", ckpt, "--set", "tracker.match_iou_thr=[0.1,0.2]", "--device", "cpu",
                   "--work-dir", tmp_path / "w")
    assert r.returncode == 2 and "tracker.match_iou_thr: a list of values is a search grid" in r.stderr
    r = det_inproc("test", ckpt, "--set", "data.test.dataset.test_mode=false", "--device", "cpu",
                   "--work-dir", tmp_path / "w")
    assert r.returncode == 2 and "data.test.dataset.test_mode: must be true for tracking" in r.stderr
