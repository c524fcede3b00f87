"""`det eval --mot` vs TrackEval on `det synth mot` sequences scored with another tracker's files.

Generates sequences with `det synth mot`, runs ByteTrack on their public detections (det.txt) to
write MOTChallenge result files, scores them with `det eval --mot GT TRACKS --json` (the real
command, in a subprocess) and with TrackEval's MotChallenge2DBox + HOTA/CLEAR/Identity, and
prints the largest difference per sequence and combined over HOTA, DetA, AssA, LocA, MOTA,
MOTP, IDF1, IDP, IDR and the counts.

Usage: .venv/bin/python benchmarks/parity/eval_mot.py [--seqs 3] [--frames 200]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import import_peer  # noqa: E402

FRACTIONS = {"HOTA": ("HOTA", "HOTA"), "DetA": ("HOTA", "DetA"), "AssA": ("HOTA", "AssA"), "LocA": ("HOTA", "LocA"),
             "MOTA": ("CLEAR", "MOTA"), "MOTP": ("CLEAR", "MOTP"), "IDF1": ("Identity", "IDF1"),
             "IDP": ("Identity", "IDP"), "IDR": ("Identity", "IDR")}
COUNTS = {"IDSW": ("CLEAR", "IDSW"), "FP": ("CLEAR", "CLR_FP"), "FN": ("CLEAR", "CLR_FN"), "Frag": ("CLEAR", "Frag"),
          "MT": ("CLEAR", "MT"), "ML": ("CLEAR", "ML")}


def make_tracks(root: Path, seqs: int, frames: int) -> dict[str, int]:
    from det.core.tracking import run_tracker
    from det.core.data.mot_io import detections_by_frame, find_sequences, read_mot_txt, read_seqinfo, write_mot_txt

    subprocess.run([sys.executable, "-m", "det.cli", "synth", "mot", str(root / "gt"), "--seqs", str(seqs), "--frames",
                    str(frames), "--no-images"], check=True, capture_output=True)
    out = root / "trackers" / "bytetrack"
    out.mkdir(parents=True)
    info = {}
    for seq in find_sequences(root / "gt"):
        n = info[seq.name] = read_seqinfo(seq)["seqLength"]
        dets = detections_by_frame(read_mot_txt(seq / "det" / "det.txt", "det"), n)
        write_mot_txt(out / f"{seq.name}.txt", run_tracker({"type": "ByteTrack"}, dets, n))
    return info


def trackeval_results(te, root: Path, info: dict[str, int]) -> dict:
    eval_cfg = {"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False,
                "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "DISPLAY_LESS_PROGRESS": True}
    ds_cfg = {"GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"), "BENCHMARK": "MOT17",
              "SKIP_SPLIT_FOL": True, "TRACKER_SUB_FOLDER": "", "SEQ_INFO": info, "PRINT_CONFIG": False}
    with contextlib.redirect_stdout(io.StringIO()):
        res, _ = te.Evaluator(eval_cfg).evaluate(
            [te.datasets.MotChallenge2DBox(ds_cfg)],
            [te.metrics.HOTA(), te.metrics.CLEAR({"PRINT_CONFIG": False}), te.metrics.Identity({"PRINT_CONFIG": False})])
    return res["MotChallenge2DBox"]["bytetrack"]


def max_diff(ours: dict, ref: dict) -> tuple[float, str]:
    worst, where = 0.0, ""
    for key, (group, field) in {**FRACTIONS, **COUNTS}.items():
        value = ref["pedestrian"][group][field]
        value = float(np.mean(value)) if np.ndim(value) else float(value)
        d = abs(float(ours[key]) - value)
        if d > worst:
            worst, where = d, key
    return worst, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seqs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    te = import_peer("trackeval")
    if te is None:
        sys.exit("TrackEval (peer) not available: nothing to compare")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        info = make_tracks(root, args.seqs, args.frames)
        proc = subprocess.run([sys.executable, "-m", "det.cli", "eval", "--mot", str(root / "gt"),
                               str(root / "trackers" / "bytetrack"), "--json"], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"det eval --mot failed: {proc.stderr.strip()}")
        ours = json.loads(proc.stdout)
        ref = trackeval_results(te, root, info)
    worst = 0.0
    for name in list(info) + ["COMBINED_SEQ"]:
        mine = ours if name == "COMBINED_SEQ" else ours["sequences"][name]
        d, key = max_diff(mine, ref[name])
        worst = max(worst, d)
        print(f"{name}: HOTA {mine['HOTA']:.6f} MOTA {mine['MOTA']:.6f} IDF1 {mine['IDF1']:.6f}  "
              f"max |det - TrackEval| = {d:.3g}{f' ({key})' if key else ''}")
    print(f"largest difference: {worst:.3g}")
    sys.exit(0 if worst < 1e-9 else 1)


if __name__ == "__main__":
    main()
