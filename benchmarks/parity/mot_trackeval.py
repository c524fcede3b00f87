"""det's MOT metrics vs TrackEval (peer) on the fixture under tests/core/evaluation/fixtures/mot.

    .venv/bin/python benchmarks/parity/mot_trackeval.py            # live check (needs the peer env)
    .venv/bin/python benchmarks/parity/mot_trackeval.py --write    # regenerate fixture + expected values

--write builds the fixture files with det (a synthetic sequence, trackers' outputs, hand-made
edge cases) and stores the values TrackEval computes on them in expected.json, which the
test tests/core/evaluation/test_mot_metrics.py compares against without TrackEval.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import import_peer  # noqa: E402

REPO = HERE.parents[1]
FIXTURE = REPO / "tests" / "core" / "evaluation" / "fixtures" / "mot"
HOTA_FIELDS = ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr", "OWTA")
CLEAR_FIELDS = ("MOTA", "MOTP", "MODA", "sMOTA", "CLR_Re", "CLR_Pr", "MTR", "PTR", "MLR", "CLR_TP", "CLR_FN",
                "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag")
ID_FIELDS = ("IDF1", "IDP", "IDR", "IDTP", "IDFP", "IDFN")


def _edge_case(gt_dir: Path, trk_dirs: dict[str, Path]) -> None:
    """A 12-frame hand-made sequence: empty frames, distractors, zero-marked gt, an id switch,
    a fragmented track and a zero-area box."""
    from det.core.data.mot_io import write_seqinfo

    seq = gt_dir / "EDGE-01"
    (seq / "gt").mkdir(parents=True, exist_ok=True)
    write_seqinfo(seq, "EDGE-01", 12, 200, 200)
    gt, trk = [], []
    for f in range(1, 13):
        if f != 5:  # frame 5: no gt at all
            gt.append(f"{f},1,{10 + 3 * f},20,30,60,1,1,1.0")
            gt.append(f"{f},2,{150 - 4 * f},30,28,55,1,1,0.8")
        if f in (3, 4, 9):
            gt.append(f"{f},3,100,150,20,40,1,7,1.0")  # static person (distractor)
            gt.append(f"{f},4,20,150,20,40,0,1,1.0")  # pedestrian not to be considered
        if f == 7:
            gt.append(f"{f},5,60,100,0,40,1,1,0.2")  # zero-width gt box
            gt.append(f"{f},6,160,160,20,30,1,12,0.9")  # reflection
        if f in (6, 10):
            continue  # no tracker output in these frames
        tid_a = 1 if f < 8 else 7  # id switch at frame 8
        trk.append(f"{f},{tid_a},{11 + 3 * f},21,30,59,0.9,-1,-1,-1")
        if f not in (4, 5):  # fragmented track on gt 2
            trk.append(f"{f},2,{151 - 4 * f},31,27,55,0.8,-1,-1,-1")
        if f in (3, 4, 9):
            trk.append(f"{f},3,101,151,20,40,0.7,-1,-1,-1")  # matches the distractor: removed
            trk.append(f"{f},4,21,151,20,39,0.6,-1,-1,-1")  # matches zero-marked gt: a FP
        if f == 7:
            trk.append(f"{f},9,161,161,19,30,0.5,-1,-1,-1")  # on the reflection: removed
            trk.append(f"{f},8,60,100,10,40,0.5,-1,-1,-1")
    (seq / "gt" / "gt.txt").write_text("\n".join(gt) + "\n")
    for name, d in trk_dirs.items():
        text = "" if name == "empty" else "\n".join(trk) + "\n"
        (d / "EDGE-01.txt").write_text(text)


def write_fixture() -> None:
    import shutil

    from det.core.tracking import run_tracker
    from det.core.data.mot_io import detections_by_frame, read_mot_txt, read_seqinfo, write_mot_txt
    from det.core.tracking.synth import generate_mot

    if FIXTURE.exists():
        shutil.rmtree(FIXTURE)
    gt_dir = FIXTURE / "gt"
    generate_mot(gt_dir, seqs=1, frames=80, seed=7, width=320, height=240, write_images=False, progress=False)
    shutil.rmtree(gt_dir / "SYNTH-01" / "img1")
    trk_dirs = {n: FIXTURE / "trackers" / n for n in ("bytetrack", "sort_noisy", "empty")}
    for d in trk_dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    seq = gt_dir / "SYNTH-01"
    n = read_seqinfo(seq)["seqLength"]
    dets = detections_by_frame(read_mot_txt(seq / "det" / "det.txt", "det"), n)
    write_mot_txt(trk_dirs["bytetrack"] / "SYNTH-01.txt", run_tracker({"type": "ByteTrack"}, dets, n))
    rows = run_tracker({"type": "SORT", "num_frames_retain": 2, "num_tentatives": 1}, dets, n)
    rng = np.random.default_rng(3)
    rows = rows[rng.random(len(rows)) > 0.08]  # drop some boxes
    rows[:, 2:6] += rng.normal(0, 2.0, size=(len(rows), 4))  # jitter
    rows[:, 4:6] = np.abs(rows[:, 4:6])
    swap = (rows[:, 0] > 40) & (rows[:, 1] % 3 == 0)
    rows[swap, 1] += 100  # id switches half way
    write_mot_txt(trk_dirs["sort_noisy"] / "SYNTH-01.txt", rows)
    (trk_dirs["empty"] / "SYNTH-01.txt").write_text("")
    _edge_case(gt_dir, trk_dirs)
    expected = trackeval_values()
    (FIXTURE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE} ({len(expected)} trackers)")


def trackeval_values() -> dict:
    """{tracker: {seq or COMBINED_SEQ: {field: value or list}}} computed by TrackEval."""
    te = import_peer("trackeval")
    if te is None:
        raise SystemExit("trackeval (peer env) is required")
    from det.core.data.mot_io import read_seqinfo

    gt_dir = FIXTURE / "gt"
    seqs = {p.name: read_seqinfo(p)["seqLength"] for p in sorted(gt_dir.iterdir()) if p.is_dir()}
    eval_cfg = {"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False,
                "DISPLAY_LESS_PROGRESS": True, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
                "PLOT_CURVES": False, "OUTPUT_EMPTY_CLASSES": False, "PRINT_ONLY_COMBINED": True}
    ds_cfg = {"GT_FOLDER": str(gt_dir), "TRACKERS_FOLDER": str(FIXTURE / "trackers"), "BENCHMARK": "MOT17",
              "SKIP_SPLIT_FOL": True, "TRACKER_SUB_FOLDER": "", "SEQ_INFO": seqs, "PRINT_CONFIG": False,
              "OUTPUT_FOLDER": None}
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = te.Evaluator(eval_cfg)
        dataset = te.datasets.MotChallenge2DBox(ds_cfg)
        metrics = [te.metrics.HOTA(), te.metrics.CLEAR({"PRINT_CONFIG": False}), te.metrics.Identity({"PRINT_CONFIG": False})]
        res, _ = evaluator.evaluate([dataset], metrics)
    out: dict = {}
    for tracker, per_seq in res["MotChallenge2DBox"].items():
        out[tracker] = {}
        for seq, by_cls in per_seq.items():
            r = by_cls["pedestrian"]
            vals = {f: np.asarray(r["HOTA"][f]).tolist() for f in HOTA_FIELDS}
            vals.update({f: float(r["CLEAR"][f]) for f in CLEAR_FIELDS})
            vals.update({f: float(r["Identity"][f]) for f in ID_FIELDS})
            out[tracker][seq] = vals
    return out


def det_values() -> dict:
    """The same fields computed by det.core.evaluation.mot."""
    from det.core.evaluation import mot
    from det.core.data.mot_io import read_mot_txt, read_seqinfo

    gt_dir = FIXTURE / "gt"
    out: dict = {}
    for tdir in sorted((FIXTURE / "trackers").iterdir()):
        parts: dict = {"h": [], "c": [], "i": []}
        out[tdir.name] = {}
        for seq in sorted(p for p in gt_dir.iterdir() if p.is_dir()):
            data = mot.preprocess_sequence(read_mot_txt(seq / "gt" / "gt.txt", "gt"),
                                           read_mot_txt(tdir / f"{seq.name}.txt", "result"),
                                           read_seqinfo(seq)["seqLength"])
            h, c, i = mot.hota_sequence(data), mot.clear_sequence(data), mot.identity_sequence(data)
            parts["h"].append(h)
            parts["c"].append(c)
            parts["i"].append(i)
            out[tdir.name][seq.name] = _flatten(h, c, i)
        out[tdir.name]["COMBINED_SEQ"] = _flatten(mot.hota_combine(parts["h"]), mot.clear_combine(parts["c"]),
                                                  mot.identity_combine(parts["i"]))
    return out


def _flatten(h: dict, c: dict, i: dict) -> dict:
    vals = {f: np.asarray(h[f], dtype=float).tolist() for f in HOTA_FIELDS}
    vals.update({f: float(c[f]) for f in CLEAR_FIELDS})
    vals.update({f: float(i[f]) for f in ID_FIELDS})
    return vals


def max_difference(a: dict, b: dict) -> tuple[float, str]:
    worst, where = 0.0, ""
    for tracker in a:
        for seq in a[tracker]:
            for field, va in a[tracker][seq].items():
                vb = b[tracker][seq][field]
                d = float(np.max(np.abs(np.asarray(va, float) - np.asarray(vb, float))))
                if d > worst:
                    worst, where = d, f"{tracker}/{seq}/{field}"
    return worst, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="regenerate the fixture and expected.json")
    args = parser.parse_args()
    if args.write:
        write_fixture()
    ref = trackeval_values()
    ours = det_values()
    worst, where = max_difference(ref, ours)
    print(f"det vs TrackEval: max |difference| = {worst:.3g} ({where or 'all equal'})")
    sys.exit(0 if worst <= 1e-6 else 1)


if __name__ == "__main__":
    main()
