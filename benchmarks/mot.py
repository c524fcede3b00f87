"""Tracking benchmarks: `det mot-search` (detections once, tracker per combination) against
re-running the detector for every combination (what MMDetection's mot_param_search does);
association speed of det's trackers beside ultralytics' BYTETracker; det's MOT metrics
beside TrackEval.

Search case: 3 synthetic sequences x 300 frames, a 12-combination ByteTrack grid.
- detector: det's RTMDet-tiny (presets/demo/rtmdet_tiny, random weights: its cost is what
  matters) through det.core.apis.Detector, run over every frame once; torchvision's
  SSDlite320 (random weights) if det's detector cannot be built.
- tracker inputs: the sequences' public det.txt (about 10 boxes per frame, what a trained
  detector gives), so the tracker+metric cost per combination is realistic.
- cached = one detector pass + the search (parallel jobs); per-combination = 12 x (one
  detector pass + one combination), both terms measured here.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arg_parser, emit, import_peer  # noqa: E402

GRID = ["tracker.match_iou_thr=[0.1,0.2,0.3,0.5]", "tracker.obj_score_thr=[0.5,0.6,0.7]"]


def build_detector_fn(batch_size: int = 8):
    """(label, DetectFn): det's Detector on a randomly initialised RTMDet-tiny, else torchvision."""
    try:
        from det.core.apis import Detector, inference_pipeline_cfg
        from det.core.config import load_preset
        from det.core.models import build_detector
        from det.core.tracking.search import detector_fn

        cfg = load_preset("demo/rtmdet_tiny")
        model = build_detector(cfg["model"])
        det = Detector(model, inference_pipeline_cfg(cfg), cfg["data"]["classes"], score_thr=0.05, batch_size=batch_size)
        det.predict_arrays([np.zeros((64, 64, 3), np.uint8)])
        return "det RTMDet-tiny (random weights) via det.core.apis.Detector", detector_fn(det)
    except Exception as exc:  # noqa: BLE001 - fall back to a stand-in detector of similar cost
        print(f"[bench] det detector unavailable ({type(exc).__name__}: {exc}); using torchvision", file=sys.stderr)
    import torch
    import torchvision

    model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                      num_classes=2).eval()

    def detect(images):
        with torch.inference_mode():
            x = [torch.from_numpy(im[..., ::-1].copy()).permute(2, 0, 1).float() / 255 for im in images]
            outs = model(x)
        return [np.column_stack([o["boxes"].numpy(), o["scores"].numpy()]).reshape(-1, 5) for o in outs]

    return "torchvision SSDlite320-MobileNetV3 (random weights)", detect


def search_case(root: Path, frames: int, jobs: int, rows: list, notes: list) -> None:
    from det.core.config import load_preset
    from det.core.tracking.search import detect_sequence, evaluate_tracker, expand_grid, prepare_sequences, search

    label, detect = build_detector_fn()
    seqs = prepare_sequences(root, public=True)
    t0 = time.perf_counter()
    for seq in sorted(p for p in root.iterdir() if p.is_dir()):
        detect_sequence(seq, detect)
    detect_s = time.perf_counter() - t0
    cfg = load_preset("trackers/bytetrack", GRID)["tracker"]
    _, combos = expand_grid(cfg)
    t0 = time.perf_counter()
    _, result = search(cfg, seqs, metric="HOTA", jobs=jobs, progress=False)
    search_s = time.perf_counter() - t0
    one = [combos[0][1]]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        evaluate_tracker(one[0], seqs)
        times.append(time.perf_counter() - t0)
    combo_s = statistics.median(times)
    n = len(combos)
    cached = detect_s + search_s
    naive = n * (detect_s + combo_s)
    total_frames = sum(s.num_frames for s in seqs)
    rows.append({"case": f"search {n} combos, {len(seqs)} seqs x {frames} frames", "det_ms": cached * 1000,
                 "peer": "detector re-run per combination", "peer_ms": naive * 1000, "ratio": naive / cached})
    notes.append(f"detector: {label}: {detect_s:.1f} s for {total_frames} frames "
                 f"({detect_s / total_frames * 1000:.0f} ms/frame); search of {n} combinations on {jobs} processes "
                 f"{search_s:.1f} s; one combination alone {combo_s:.2f} s; per-combination total = {n} x "
                 f"({detect_s:.1f} + {combo_s:.2f}) s")
    notes.append(f"best combination by HOTA: {result[0]}")


class _Boxes:
    """The slice of ultralytics' Boxes that BYTETracker reads (conf, xywh, cls, mask indexing)."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray):
        self.xyxy, self.conf = xyxy, conf
        self.cls = np.zeros(len(conf))
        self.xywh = np.column_stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                                     xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]]) if len(xyxy) else np.zeros((0, 4))

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask):
        return _Boxes(self.xyxy[mask], self.conf[mask])


def _ultralytics_track(tracker_mod, dets_per_seq: list[tuple[str, int, dict]]) -> tuple[float, dict]:
    from types import SimpleNamespace

    args = SimpleNamespace(track_high_thresh=0.6, track_low_thresh=0.1, new_track_thresh=0.7, track_buffer=30,
                           match_thresh=0.9, fuse_score=True)
    out, elapsed = {}, 0.0
    for name, n, dets in dets_per_seq:
        tracker = tracker_mod.BYTETracker(args)
        rows = []
        t0 = time.perf_counter()
        for f in range(1, n + 1):
            d = dets[f]
            res = tracker.update(_Boxes(d[:, :4].astype(np.float32), d[:, 4].astype(np.float32)))
            for r in np.asarray(res).reshape(-1, 8):
                rows.append([f, r[4], r[0], r[1], r[2] - r[0], r[3] - r[1], r[5]])
        elapsed += time.perf_counter() - t0
        out[name] = np.array(rows).reshape(-1, 7)
    return elapsed, out


def tracker_cases(root: Path, rows: list, notes: list) -> dict:
    from det.core.evaluation.mot import evaluate_sequences, preprocess_sequence
    from det.core.tracking import run_tracker
    from det.core.tracking.mot_io import detections_by_frame, find_sequences, read_mot_txt, read_seqinfo

    seqs = []
    for seq in find_sequences(root):
        n = read_seqinfo(seq)["seqLength"]
        seqs.append((seq.name, n, detections_by_frame(read_mot_txt(seq / "det" / "det.txt", "det"), n),
                     read_mot_txt(seq / "gt" / "gt.txt", "gt")))
    frames = sum(s[1] for s in seqs)

    def score(outputs: dict) -> dict:
        items = []
        for name, n, _, gt in seqs:
            res = np.full((len(outputs[name]), 10), -1.0)
            res[:, :7] = outputs[name]
            items.append((name, preprocess_sequence(gt, res, n)))
        return evaluate_sequences(items)

    ultra = import_peer("ultralytics.trackers.byte_tracker")
    peer_ms, peer_metrics = None, None
    if ultra is not None:
        best = min(_ultralytics_track(ultra, [(a, b, c) for a, b, c, _ in seqs])[0] for _ in range(3))
        _, outputs = _ultralytics_track(ultra, [(a, b, c) for a, b, c, _ in seqs])
        peer_ms = best / frames * 1000
        peer_metrics = score(outputs)
    results = {}
    for label, preset in (("SORT", "trackers/sort"), ("ByteTrack", "trackers/bytetrack"), ("OC-SORT", "trackers/ocsort")):
        from det.core.config import load_preset

        cfg = load_preset(preset)["tracker"]
        times, outputs = [], {}
        for _ in range(3):
            t0 = time.perf_counter()
            outputs = {name: run_tracker(cfg, dets, n) for name, n, dets, _ in seqs}
            times.append(time.perf_counter() - t0)
        ms = min(times) / frames * 1000
        m = score(outputs)
        results[label] = m
        row = {"case": f"{label} association, per frame ({frames} frames)", "det_ms": ms, "fps": 1000 / ms,
               "MOTA": round(m["MOTA"], 4), "IDF1": round(m["IDF1"], 4), "HOTA": round(m["HOTA"], 4)}
        if label == "ByteTrack" and peer_ms is not None:
            row.update(peer="ultralytics BYTETracker", peer_ms=peer_ms, ratio=peer_ms / ms,
                       peer_MOTA=round(peer_metrics["MOTA"], 4), peer_IDF1=round(peer_metrics["IDF1"], 4))
        rows.append(row)
    notes.append("association speed: tracker update only (detections already in memory), best of 3 runs")
    return results


def metric_case(root: Path, tmp: Path, rows: list, notes: list) -> None:
    from det.core.evaluation.mot import evaluate_mot
    from det.core.tracking import run_tracker
    from det.core.tracking.mot_io import detections_by_frame, find_sequences, read_mot_txt, read_seqinfo, write_mot_txt

    res_dir = tmp / "trackers" / "bytetrack"
    res_dir.mkdir(parents=True)
    seq_info = {}
    for seq in find_sequences(root):
        n = read_seqinfo(seq)["seqLength"]
        seq_info[seq.name] = n
        write_mot_txt(res_dir / f"{seq.name}.txt",
                      run_tracker({"type": "ByteTrack"}, detections_by_frame(read_mot_txt(seq / "det" / "det.txt", "det"), n), n))
    t0 = time.perf_counter()
    ours = evaluate_mot(root, res_dir)
    det_s = time.perf_counter() - t0
    te = import_peer("trackeval")
    row = {"case": "HOTA+CLEAR+Identity, files to numbers", "det_ms": det_s * 1000}
    if te is not None:
        import contextlib
        import io

        eval_cfg = {"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False,
                    "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "DISPLAY_LESS_PROGRESS": True}
        ds_cfg = {"GT_FOLDER": str(root), "TRACKERS_FOLDER": str(tmp / "trackers"), "BENCHMARK": "MOT17",
                  "SKIP_SPLIT_FOL": True, "TRACKER_SUB_FOLDER": "", "SEQ_INFO": seq_info, "PRINT_CONFIG": False}
        with contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            res, _ = te.Evaluator(eval_cfg).evaluate(
                [te.datasets.MotChallenge2DBox(ds_cfg)],
                [te.metrics.HOTA(), te.metrics.CLEAR({"PRINT_CONFIG": False}), te.metrics.Identity({"PRINT_CONFIG": False})])
            peer_s = time.perf_counter() - t0
        ref = res["MotChallenge2DBox"]["bytetrack"]["COMBINED_SEQ"]["pedestrian"]
        diff = max(abs(ours["HOTA"] - float(np.mean(ref["HOTA"]["HOTA"]))), abs(ours["MOTA"] - float(ref["CLEAR"]["MOTA"])),
                   abs(ours["IDF1"] - float(ref["Identity"]["IDF1"])))
        row.update(peer="TrackEval", peer_ms=peer_s * 1000, ratio=peer_s / det_s, max_abs_diff=diff)
    rows.append(row)


def main() -> None:
    parser = arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--seqs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--skip-search", action="store_true", help="only association and metric speed")
    args = parser.parse_args()
    frames = 30 if args.quick else args.frames
    from det.core.tracking.synth import generate_mot

    rows: list[dict] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = tmp / "seqs"
        generate_mot(root, seqs=args.seqs, frames=frames, seed=0, width=320, height=240, progress=False)
        if not args.skip_search:
            search_case(root, frames, args.jobs, rows, notes)
        tracker_cases(root, rows, notes)
        metric_case(root, tmp, rows, notes)
    emit("Multi-object tracking", rows, notes, args.json)


if __name__ == "__main__":
    main()
