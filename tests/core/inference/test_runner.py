"""run_inference with a fake detector: outputs, formats, corrupt inputs, video, tracking."""
from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest

from det.core.errors import DetError
from det.core.inference.inputs import discover
from det.core.inference.runner import InferOptions, run_inference
from det.core.inference.video import VideoWriter
from det.core.structures import rle_to_bitmap

from infer_fakes import FakeDetector


def _scene(path, boxes):
    img = np.zeros((60, 80, 3), np.uint8)
    for x0, y0, x1, y1, label in boxes:
        img[y0:y1, x0:x1] = [(0, 0, 255), (0, 255, 0)][label]
    assert cv2.imwrite(str(path), img)


@pytest.fixture
def images(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    _scene(d / "a.png", [(5, 5, 20, 25, 0)])
    _scene(d / "b.png", [(10, 10, 30, 20, 1), (40, 30, 70, 55, 0)])
    _scene(d / "c.png", [])
    return d


def test_json_and_vis_outputs(images, tmp_path):
    out = tmp_path / "out"
    det = FakeDetector(with_masks=True)
    summary = run_inference(det, discover([str(images)]), InferOptions(out_dir=out, batch_size=2))
    assert summary.images == 3 and summary.instances == 3 and det.batches == [2, 1]
    rec = json.loads((out / "preds" / "b.json").read_text())
    assert rec["img_path"] == str(images / "b.png") and (rec["height"], rec["width"]) == (60, 80)
    assert rec["class_names"] == ["red", "green"] and rec["labels"] == [0, 1]
    assert rec["bboxes"] == [[40, 30, 70, 55], [10, 10, 30, 20]]
    mask = rle_to_bitmap(rec["masks"][1])
    assert mask.shape == (60, 80) and mask[10:20, 10:30].all() and mask.sum() == 200
    assert sorted(p.name for p in (out / "vis").iterdir()) == ["a.jpg", "b.jpg", "c.jpg"]
    vis = cv2.imread(str(out / "vis" / "b.jpg"))
    assert vis.shape == (60, 80, 3)
    with pytest.raises(DetError, match="not empty"):
        run_inference(det, discover([str(images)]), InferOptions(out_dir=out))
    run_inference(det, discover([str(images)]), InferOptions(out_dir=out, force=True))


def test_jsonl_only_on_stream_and_no_files(images, tmp_path):
    stream = io.StringIO()
    out = tmp_path / "o"
    run_inference(FakeDetector(), discover([str(images)]), InferOptions(out_dir=out, format="jsonl", vis=False, stdout=stream))
    lines = stream.getvalue().splitlines()
    assert [json.loads(ln)["img_path"] for ln in lines] == [str(images / n) for n in ("a.png", "b.png", "c.png")]
    assert json.loads(lines[0])["bboxes"] == [[5, 5, 20, 25]] and "masks" not in json.loads(lines[0])
    assert not out.exists()


def test_coco_results_use_ann_ids(images, tmp_path):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": [{"id": 7, "file_name": "imgs/a.png", "height": 60, "width": 80},
                                          {"id": 9, "file_name": "b.png", "height": 60, "width": 80}],
                               "categories": [{"id": 3, "name": "green"}, {"id": 1, "name": "red"}],
                               "annotations": []}))
    out = tmp_path / "o"
    run_inference(FakeDetector(), discover([str(images / "a.png"), str(images / "b.png"), str(images / "c.png")]),
                  InferOptions(out_dir=out, format="coco", ann=ann, vis=False))
    res = json.loads((out / "results.json").read_text())
    assert {(r["image_id"], r["category_id"], tuple(r["bbox"])) for r in res} == {
        (7, 1, (5, 5, 15, 20)), (9, 3, (10, 10, 20, 10)), (9, 1, (40, 30, 30, 25))}
    with pytest.raises(DetError, match="--ann"):
        run_inference(FakeDetector(), discover([str(images)]), InferOptions(out_dir=out, format="coco"))


def test_corrupt_skipped_with_warning_or_strict_error(images, tmp_path, caplog):
    (images / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    summary = run_inference(FakeDetector(), discover([str(images)]), InferOptions(out_dir=tmp_path / "o", vis=False))
    assert summary.images == 3 and summary.skipped == [str(images / "bad.jpg")]
    assert sorted(p.stem for p in (tmp_path / "o" / "preds").iterdir()) == ["a", "b", "c"]
    with pytest.raises(DetError, match=r"bad\.jpg.*--strict"):
        run_inference(FakeDetector(), discover([str(images)]), InferOptions(out_dir=tmp_path / "o2", strict=True))


def test_limit_and_option_checks(images, tmp_path):
    s = run_inference(FakeDetector(), discover([str(images)]), InferOptions(out_dir=tmp_path / "o", limit=2, vis=False))
    assert s.images == 2
    for opts, msg in [(dict(format="xml"), "--format"), (dict(pred=False, format="jsonl"), "--no-pred"),
                      (dict(batch_size=0), "--batch-size"), (dict(merge="avg"), "--merge"),
                      (dict(out_mot="x.txt"), "--out-mot"), (dict(track="deepsort"), "--track")]:
        with pytest.raises(DetError, match=msg):
            run_inference(FakeDetector(), discover([str(images)]), InferOptions(out_dir=tmp_path / "p", **opts))


def test_show_without_display_is_a_clear_error(images, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DetError, match="--show"):
        run_inference(FakeDetector(), discover([str(images)]), InferOptions(out_dir=tmp_path / "o", show=True))


def _moving_video(path, n=12, fps=10.0):
    w = VideoWriter(path, fps=fps)
    for k in range(n):
        img = np.zeros((64, 96, 3), np.uint8)
        img[10:30, 4 + 4 * k:24 + 4 * k] = (0, 0, 255)
        img[40:60, 70 - 3 * k:86 - 3 * k] = (0, 255, 0)
        w.write(img)
    w.close()


def test_video_in_video_out_at_source_fps(tmp_path):
    src = tmp_path / "clip.avi"
    _moving_video(src)
    out_video = tmp_path / "drawn.avi"
    s = run_inference(FakeDetector(), discover([str(src)]),
                      InferOptions(out_dir=tmp_path / "o", out_video=out_video, vis=False, batch_size=4))
    assert s.images == 12 and s.instances == 24
    cap = cv2.VideoCapture(str(out_video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and abs(cap.get(cv2.CAP_PROP_FPS) - 10.0) < 1e-3
    cap.release()
    recs = [json.loads((tmp_path / "o" / "preds" / f"clip_{k:06d}.json").read_text()) for k in range(12)]
    assert [r["frame"] for r in recs] == list(range(12))
    assert abs(recs[5]["bboxes"][0][0] - 24) <= 1  # the red box moved 4 px per frame


def test_tracking_writes_mot_with_stable_ids(tmp_path):
    pytest.importorskip("det.core.tracking")
    src = tmp_path / "clip.avi"
    _moving_video(src)
    mot = tmp_path / "track.txt"
    s = run_inference(FakeDetector(), discover([str(src)]),
                      InferOptions(out_dir=tmp_path / "o", vis=False, track="bytetrack", out_mot=mot))
    rows = np.loadtxt(mot, delimiter=",")
    assert set(rows[:, 0].astype(int)) == set(range(1, 13))
    assert len(set(rows[:, 1].astype(int))) == 2 and (rows[:, 7:] == -1).all()
    first = rows[rows[:, 0] == 1]
    red_id = int(first[np.argmin(first[:, 2]), 1])
    red = rows[rows[:, 1] == red_id]
    assert np.allclose(np.diff(red[:, 2]), 4, atol=1)
    rec = json.loads((tmp_path / "o" / "preds" / "clip_000006.json").read_text())
    assert sorted(rec["track_ids"]) == sorted(set(rows[:, 1].astype(int)))
    assert s.outputs["mot"] == str(mot)


def test_sliced_run_finds_each_cut_object_once(tmp_path):
    img = np.zeros((400, 520, 3), np.uint8)
    gt = [(150, 20, 190, 60, 0), (250, 170, 300, 230, 1), (60, 300, 140, 380, 0)]  # crossing x=160/256, y=192...
    for x0, y0, x1, y1, label in gt:
        img[y0:y1, x0:x1] = [(0, 0, 255), (0, 255, 0)][label]
    cv2.imwrite(str(tmp_path / "big.png"), img)
    out = tmp_path / "o"
    run_inference(FakeDetector(), discover([str(tmp_path / "big.png")]),
                  InferOptions(out_dir=out, vis=False, slice=200, overlap=0.3, full=False, batch_size=3))
    rec = json.loads((out / "preds" / "big.json").read_text())
    assert sorted(map(tuple, rec["bboxes"])) == sorted((x0, y0, x1, y1) for x0, y0, x1, y1, _ in gt)
