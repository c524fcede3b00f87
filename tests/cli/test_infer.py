"""`det infer` end to end with a checkpoint trained for a few iterations: folders, globs, stdin,
JSON Lines, COCO results, video in/out, corrupt and missing inputs, sliced inference."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow


def _train_few_steps(path: Path) -> Path:
    """Fallback when the shared `tiny_checkpoint` fixture is absent: the demo model after two
    optimiser steps on the synthetic shapes, saved in det's checkpoint layout."""
    from det.core.config import load_preset
    from det.core.engine.runner import build_split
    from det.core.fileio import atomic_torch_save
    from det.core.models import build_detector

    cfg = load_preset("demo/rtmdet_tiny", ["data.train.dataset.num_train=4", "data.train.dataset.num_val=2",
                                           "data.train.num_workers=0"])
    torch.manual_seed(0)
    dataset, collate_fn, _ = build_split(cfg, "train")
    model = build_detector(cfg["model"]).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(2):
        batch = collate_fn([dataset[i] for i in range(2)])
        loss = sum(v for k, v in model.loss(batch["inputs"], batch["samples"]).items() if k.startswith("loss"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    atomic_torch_save(path, {"state_dict": model.state_dict(), "preset": cfg, "meta": {"classes": cfg["data"]["classes"]}})
    return path


@pytest.fixture(scope="module")
def ckpt(request, tmp_path_factory) -> Path:
    try:
        value = request.getfixturevalue("tiny_checkpoint")
    except pytest.FixtureLookupError:
        return _train_few_steps(tmp_path_factory.mktemp("infer_ckpt") / "tiny.pt")
    return Path(value["checkpoint"] if isinstance(value, dict) else value)


def _shapes(path: Path, seed: int, size=(96, 128)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((*size, 3), 40, np.uint8)
    for _ in range(3):
        c = tuple(int(v) for v in rng.integers(100, 255, 3))
        x, y = int(rng.integers(10, size[1] - 30)), int(rng.integers(10, size[0] - 30))
        cv2.rectangle(img, (x, y), (x + 20, y + 18), c, -1) if rng.random() < 0.5 else cv2.circle(img, (x + 10, y + 10), 10, c, -1)
    assert cv2.imwrite(str(path), img)
    return img


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("infer_data")
    (root / "imgs" / "sub").mkdir(parents=True)
    for i, rel in enumerate(["a.jpg", "b.png", "sub/c.jpg"]):
        _shapes(root / "imgs" / rel, i)
    (root / "imgs" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "single").mkdir()
    _shapes(root / "single" / "d.jpg", 7)
    writer = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (128, 96))
    for k in range(6):
        frame = np.full((96, 128, 3), 40, np.uint8)
        cv2.circle(frame, (20 + 12 * k, 48), 12, (0, 200, 255), -1)
        writer.write(frame)
    writer.release()
    return root


def _check_record(rec: dict, classes: list[str]) -> None:
    n = len(rec["scores"])
    assert len(rec["labels"]) == len(rec["class_names"]) == len(rec["bboxes"]) == n
    assert all(classes[lab] == name for lab, name in zip(rec["labels"], rec["class_names"]))
    assert rec["scores"] == sorted(rec["scores"], reverse=True)
    for x0, y0, x1, y1 in rec["bboxes"]:
        assert -1 <= x0 <= x1 <= rec["width"] + 1 and -1 <= y0 <= y1 <= rec["height"] + 1


def test_folder_with_corrupt_image_matches_python_api(det_inproc, ckpt, data, tmp_path):
    out = tmp_path / "out"
    r = det_inproc("infer", data / "imgs", "--weights", ckpt, "--out-dir", out, "--score-thr", "0.05",
                   "--batch-size", "2", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "broken.jpg" in r.stderr and "skipped" in r.stderr
    assert r.stdout == ""
    assert sorted(p.name for p in (out / "preds").iterdir()) == ["a.json", "b.json", "c.json"]
    assert sorted(p.name for p in (out / "vis").iterdir()) == ["a.jpg", "b.jpg", "c.jpg"]
    assert cv2.imread(str(out / "vis" / "b.jpg")).shape == (96, 128, 3)

    from det.core.apis import Detector

    api = Detector.from_checkpoint(ckpt, device="cpu", score_thr=0.05)
    for name, rel in [("a", "a.jpg"), ("b", "b.png"), ("c", "sub/c.jpg")]:
        rec = json.loads((out / "preds" / f"{name}.json").read_text())
        assert rec["img_path"] == str(data / "imgs" / rel) and (rec["height"], rec["width"]) == (96, 128)
        _check_record(rec, api.class_names)
        ref = api(str(data / "imgs" / rel))
        assert rec["labels"] == ref.labels.tolist()
        np.testing.assert_allclose(np.array(rec["bboxes"]).reshape(-1, 4), ref.bboxes, atol=0.02)
        np.testing.assert_allclose(rec["scores"], ref.scores, atol=1e-4)

    strict = det_inproc("infer", data / "imgs", "--weights", ckpt, "--out-dir", tmp_path / "s", "--strict", "--device", "cpu")
    assert strict.returncode == 2 and "broken.jpg" in strict.stderr and "--strict" in strict.stderr


def test_missing_input_exits_2_naming_it(det_inproc, ckpt, data, tmp_path):
    r = det_inproc("infer", data / "single", data / "nope.jpg", "--weights", ckpt, "--out-dir", tmp_path / "o")
    assert r.returncode == 2 and f"{data / 'nope.jpg'}: input not found" in r.stderr
    r = det_inproc("infer", data / "single", "--weights", tmp_path / "missing.pt", "--out-dir", tmp_path / "o")
    assert r.returncode == 2 and "missing.pt" in r.stderr


def test_stdin_and_glob_jsonl_only_results_on_stdout(det, ckpt, data, tmp_path):
    stdin = f"{data / 'single' / 'd.jpg'}\n{data / 'imgs' / 'b.png'}\n"
    r = det("infer", "-", str(data / "imgs" / "**" / "*.jpg"), "--weights", ckpt, "--format", "jsonl", "--no-vis",
            "--score-thr", "0.05", "--device", "cpu", "--out-dir", tmp_path / "o", input=stdin,
            env={"DET_PROGRESS": "1"})
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]  # every stdout line is one JSON object
    assert [Path(x["img_path"]).name for x in recs] == ["d.jpg", "b.png", "a.jpg", "c.jpg"]
    assert "broken.jpg" in r.stderr  # the glob matched it: warned on stderr, not on stdout
    assert not (tmp_path / "o").exists()


def test_video_every_frame_and_out_video_at_source_fps(det_inproc, ckpt, data, tmp_path):
    out_video = tmp_path / "drawn.mp4"
    mot = tmp_path / "tracks.txt"
    r = det_inproc("infer", data / "clip.avi", "--weights", ckpt, "--out-dir", tmp_path / "o", "--no-vis",
                   "--out-video", out_video, "--score-thr", "0.05", "--batch-size", "4", "--device", "cpu",
                   "--track", "bytetrack", "--out-mot", mot)
    assert r.returncode == 0, r.stderr
    for line in mot.read_text().splitlines():  # MOTChallenge rows: frame,id,x,y,w,h,score,-1,-1,-1
        fields = line.split(",")
        assert len(fields) == 10 and 1 <= int(fields[0]) <= 6 and int(fields[1]) >= 1 and fields[7:] == ["-1"] * 3
    preds = sorted((tmp_path / "o" / "preds").iterdir())
    assert [p.name for p in preds] == [f"clip_{k:06d}.json" for k in range(6)]
    assert [json.loads(p.read_text())["frame"] for p in preds] == list(range(6))
    cap = cv2.VideoCapture(str(out_video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6 and abs(cap.get(cv2.CAP_PROP_FPS) - 12.0) < 0.01
    cap.release()
    again = det_inproc("infer", data / "clip.avi", "--weights", ckpt, "--out-dir", tmp_path / "o2", "--out-video", out_video)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_coco_results_with_ann_ids(det_inproc, ckpt, data, tmp_path):
    from det.core.fileio import load_checkpoint

    classes = load_checkpoint(ckpt)["meta"]["classes"]
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": [{"id": 11, "file_name": "imgs/a.jpg", "height": 96, "width": 128},
                                          {"id": 12, "file_name": "imgs/b.png", "height": 96, "width": 128}],
                               "categories": [{"id": 100 + i, "name": n} for i, n in enumerate(classes)],
                               "annotations": []}))
    out = tmp_path / "o"
    r = det_inproc("infer", data / "imgs" / "a.jpg", data / "imgs" / "b.png", "--weights", ckpt, "--format", "coco",
                   "--ann", ann, "--out-dir", out, "--no-vis", "--score-thr", "0.0", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res and {x["image_id"] for x in res} <= {11, 12}
    assert all(100 <= x["category_id"] < 100 + len(classes) and len(x["bbox"]) == 4 for x in res)
    from pycocotools.coco import COCO

    gt = COCO(str(ann))
    gt.loadRes(str(out / "results.json"))  # pycocotools accepts the file


def test_sliced_inference_smoke(det_inproc, ckpt, tmp_path):
    big = tmp_path / "big.png"
    img = np.full((220, 300, 3), 40, np.uint8)
    for k in range(4):
        cv2.circle(img, (40 + 70 * k, 110), 14, (0, 200, 255), -1)
    cv2.imwrite(str(big), img)
    r = det_inproc("infer", big, "--weights", ckpt, "--slice", "160", "--overlap", "0.2", "--merge", "wbf",
                   "--batch-size", "4", "--format", "jsonl", "--no-vis", "--score-thr", "0.05", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert (rec["height"], rec["width"]) == (220, 300)
    from det.core.fileio import load_checkpoint

    _check_record(rec, load_checkpoint(ckpt)["meta"]["classes"])


def test_infer_section_defaults_set_and_explicit_options(det_inproc, ckpt, data, tmp_path):
    """Precedence: the checkpoint's preset < a preset's `infer:` section < --set infer.KEY < options."""
    import yaml

    def scores(*extra):
        r = det_inproc("infer", data / "single", "--weights", ckpt, "--device", "cpu", *extra)
        assert r.returncode == 0, r.stderr
        records = [json.loads(line) for line in r.stdout.splitlines()]
        assert len(records) == 1  # one image, one JSON Lines record: format jsonl
        return [s for rec in records for s in rec["scores"]]

    everything = scores("--format", "jsonl", "--score-thr", "0")
    assert len(everything) > 3
    above = min(1.0, max(everything) + 1e-3)  # a threshold that drops every prediction
    preset = tmp_path / "p.yaml"
    cfg = torch.load(ckpt, weights_only=True)["preset"]
    preset.write_text(yaml.safe_dump({**cfg, "infer": {"score_thr": above, "format": "jsonl"}}))
    assert scores("--preset", preset) == []  # score_thr and format (records on stdout) from the section
    assert scores("--preset", preset, "--set", "infer.score_thr=0") == everything
    assert scores("--preset", preset, "--set", "infer.score_thr=0", "--score-thr", str(above)) == []
    bad = det_inproc("infer", data / "single", "--weights", ckpt, "--set", "infer.score_thr=7")
    assert bad.returncode == 2 and "infer.score_thr: expected a number >= 0 and <= 1, got 7" in bad.stderr
