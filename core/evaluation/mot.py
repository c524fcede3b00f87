"""MOTChallenge evaluation: HOTA (DetA, AssA, LocA), CLEAR (MOTA, MOTP, IDSW, FP, FN, Frag,
MT, ML) and Identity (IDF1, IDP, IDR), with MOT17's preprocessing.

Definitions, thresholds and tie-breaking follow TrackEval's MotChallenge2DBox + HOTA/CLEAR/
Identity so that the numbers equal TrackEval's (tests keep values TrackEval computed once):
- similarity: box IoU; HOTA averages over alpha = 0.05, 0.10, ..., 0.95;
- MOT17 preprocessing: tracker boxes matched (IoU >= 0.5, Hungarian) to gt of a distractor class
  (person_on_vehicle, static_person, distractor, reflection; + non_mot_vehicle for MOT20) are
  removed; then only pedestrian gt with the consider flag set is evaluated;
- CLEAR matching prefers keeping the previous frame's pairs (score bonus), threshold 0.5.
Written here (not a TrackEval dependency) because TrackEval's package pulls opencv-python next
to the project's opencv-python-headless and evaluates only through its folder layout; this
module works on arrays and files alike, vectorised over the HOTA thresholds.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from det.core.errors import DataError
from det.core.structures.boxes import box_overlaps
from det.core.data.mot_io import DISTRACTOR_CLASSES, MOT_CLASSES, find_sequences, read_mot_txt, read_seqinfo

ALPHAS = np.arange(0.05, 0.99, 0.05)
EPS = np.finfo("float").eps
HOTA_ARRAYS = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA")
# Keys of the summary dict, in display order.
METRIC_KEYS = ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr", "MOTA", "MOTP", "MODA",
               "IDF1", "IDP", "IDR", "IDSW", "FP", "FN", "TP", "Frag", "MT", "PT", "ML", "IDTP", "IDFP", "IDFN")
HIGHER_IS_BETTER = {k: k not in ("IDSW", "FP", "FN", "Frag", "ML", "PT", "IDFP", "IDFN") for k in METRIC_KEYS}


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (N, 4) and (M, 4) xywh boxes with MOTChallenge's conventions for degenerate boxes
    (a box of area <= eps overlaps nothing)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iou = box_overlaps(a, b, fmt="xywh", eps=EPS)
    iou[_xywh_area(a) <= EPS, :] = 0
    iou[:, _xywh_area(b) <= EPS] = 0
    return iou


def _xywh_area(boxes: np.ndarray) -> np.ndarray:
    """Area as TrackEval computes it, from the corners: (x + w - x) * (y + h - y)."""
    return (boxes[:, 0] + boxes[:, 2] - boxes[:, 0]) * (boxes[:, 1] + boxes[:, 3] - boxes[:, 1])


@dataclass
class SequenceData:
    """One preprocessed sequence: per-frame contiguous ids and gt x tracker similarities."""

    gt_ids: list[np.ndarray]
    tracker_ids: list[np.ndarray]
    similarity: list[np.ndarray]
    num_gt_ids: int
    num_tracker_ids: int
    num_gt_dets: int
    num_tracker_dets: int
    num_timesteps: int


def _split_frames(rows: np.ndarray, n: int) -> list[np.ndarray]:
    frames = rows[:, 0].astype(np.int64)
    order = np.argsort(frames, kind="stable")
    rows, frames = rows[order], frames[order]
    bounds = np.searchsorted(frames, np.arange(1, n + 2))
    return [rows[bounds[t]:bounds[t + 1]] for t in range(n)]


def _relabel(ids: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    flat = np.concatenate(ids) if ids else np.empty(0, np.int64)
    if len(flat) == 0:
        return ids, 0
    uniq, inverse = np.unique(flat, return_inverse=True)
    out, start = [], 0
    for arr in ids:
        out.append(inverse[start:start + len(arr)].astype(np.int64))
        start += len(arr)
    return out, len(uniq)


def preprocess_sequence(gt: np.ndarray, tracker: np.ndarray, num_frames: int, benchmark: str = "MOT17",
                        do_preproc: bool = True, gt_name: str = "gt", tracker_name: str = "tracker") -> SequenceData:
    """Apply MOTChallenge's preprocessing to (N, 10) gt rows and (M, 10) tracker rows."""
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 10)
    tracker = np.asarray(tracker, dtype=np.float64).reshape(-1, 10)
    for rows, name in ((gt, gt_name), (tracker, tracker_name)):
        if len(rows) and rows[:, 0].max() > num_frames:
            raise DataError(f"{name}: frame {int(rows[:, 0].max())} is beyond the sequence length {num_frames}")
    if len(tracker) and tracker[:, 7].astype(np.int64).max() > 1:
        raise DataError(f"{tracker_name}: evaluation is only valid for the pedestrian class (column 8 must be 1 or -1)")
    use_classes = do_preproc and benchmark != "MOT15"
    if use_classes and len(gt):
        invalid = np.setdiff1d(np.unique(gt[:, 7].astype(np.int64)), list(MOT_CLASSES.values()))
        if len(invalid):
            raise DataError(f"{gt_name}: invalid gt class id(s) {', '.join(map(str, invalid))} (MOTChallenge uses 1..13)")
    distractors = np.array(DISTRACTOR_CLASSES.get(benchmark, DISTRACTOR_CLASSES["MOT17"]))
    gts, trs = _split_frames(gt, num_frames), _split_frames(tracker, num_frames)
    gt_ids, tr_ids, sims = [], [], []
    for t in range(num_frames):
        g, r = gts[t], trs[t]
        for rows, name in ((g, gt_name), (r, tracker_name)):
            ids = rows[:, 1].astype(np.int64)
            if len(np.unique(ids)) != len(ids):
                raise DataError(f"{name}: id {_first_dup(ids)} appears twice in frame {t + 1}")
        sim = box_iou_xywh(g[:, 2:6], r[:, 2:6])
        if use_classes and len(g) and len(r):
            scores = sim.copy()
            scores[scores < 0.5 - EPS] = 0
            rows_m, cols_m = linear_sum_assignment(-scores)
            ok = scores[rows_m, cols_m] > 0 + EPS
            rows_m, cols_m = rows_m[ok], cols_m[ok]
            remove = cols_m[np.isin(g[rows_m, 7].astype(np.int64), distractors)]
            if len(remove):
                r = np.delete(r, remove, axis=0)
                sim = np.delete(sim, remove, axis=1)
        keep = g[:, 6].astype(np.int64) != 0
        if use_classes:
            keep &= g[:, 7].astype(np.int64) == MOT_CLASSES["pedestrian"]
        gt_ids.append(g[keep, 1].astype(np.int64))
        sims.append(sim[keep])
        tr_ids.append(r[:, 1].astype(np.int64))
    gt_ids, n_gt = _relabel(gt_ids)
    tr_ids, n_tr = _relabel(tr_ids)
    return SequenceData(gt_ids, tr_ids, sims, n_gt, n_tr, int(sum(map(len, gt_ids))),
                        int(sum(map(len, tr_ids))), num_frames)


def _first_dup(ids: np.ndarray) -> int:
    uniq, counts = np.unique(ids, return_counts=True)
    return int(uniq[counts > 1][0])


# ----------------------------------------------------------------------------------- HOTA
def hota_sequence(d: SequenceData) -> dict:
    """Per-sequence HOTA counts and arrays (over ALPHAS)."""
    na = len(ALPHAS)
    res = {k: np.zeros(na) for k in (*HOTA_ARRAYS, "HOTA_TP", "HOTA_FN", "HOTA_FP")}
    if d.num_tracker_dets == 0 or d.num_gt_dets == 0:
        res["HOTA_FN" if d.num_tracker_dets == 0 else "HOTA_FP"] = np.full(na, float(d.num_gt_dets or d.num_tracker_dets))
        res["LocA"] = np.ones(na)
        return res
    potential = np.zeros((d.num_gt_ids, d.num_tracker_ids))
    gt_count = np.zeros((d.num_gt_ids, 1))
    tr_count = np.zeros((1, d.num_tracker_ids))
    for g, r, sim in zip(d.gt_ids, d.tracker_ids, d.similarity):
        denom = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim
        sim_iou = np.zeros_like(sim)
        mask = denom > 0 + EPS
        sim_iou[mask] = sim[mask] / denom[mask]
        potential[g[:, None], r[None, :]] += sim_iou
        gt_count[g] += 1
        tr_count[0, r] += 1
    alignment = potential / (gt_count + tr_count - potential)
    matches = np.zeros((na, d.num_gt_ids, d.num_tracker_ids))
    for g, r, sim in zip(d.gt_ids, d.tracker_ids, d.similarity):
        if len(g) == 0:
            res["HOTA_FP"] += len(r)
            continue
        if len(r) == 0:
            res["HOTA_FN"] += len(g)
            continue
        score = alignment[g[:, None], r[None, :]] * sim
        rows, cols = linear_sum_assignment(-score)
        s = sim[rows, cols]
        ok = s[None, :] >= ALPHAS[:, None] - EPS  # (A, K)
        n = ok.sum(1)
        res["HOTA_TP"] += n
        res["HOTA_FN"] += len(g) - n
        res["HOTA_FP"] += len(r) - n
        res["LocA"] += np.where(ok, s[None, :], 0.0).sum(1)
        a_idx, k_idx = np.nonzero(ok)
        np.add.at(matches, (a_idx, g[rows[k_idx]], r[cols[k_idx]]), 1)
    tp = np.maximum(1, res["HOTA_TP"])
    for a in range(na):
        m = matches[a]
        res["AssA"][a] = np.sum(m * (m / np.maximum(1, gt_count + tr_count - m))) / tp[a]
        res["AssRe"][a] = np.sum(m * (m / np.maximum(1, gt_count))) / tp[a]
        res["AssPr"][a] = np.sum(m * (m / np.maximum(1, tr_count))) / tp[a]
    res["LocA"] = np.maximum(1e-10, res["LocA"]) / np.maximum(1e-10, res["HOTA_TP"])
    return _hota_final(res)


def _hota_final(res: dict) -> dict:
    tp, fn, fp = res["HOTA_TP"], res["HOTA_FN"], res["HOTA_FP"]
    res["DetRe"] = tp / np.maximum(1, tp + fn)
    res["DetPr"] = tp / np.maximum(1, tp + fp)
    res["DetA"] = tp / np.maximum(1, tp + fn + fp)
    res["HOTA"] = np.sqrt(res["DetA"] * res["AssA"])
    res["OWTA"] = np.sqrt(res["DetRe"] * res["AssA"])
    return res


def hota_combine(parts: list[dict]) -> dict:
    res = {k: sum(p[k] for p in parts) for k in ("HOTA_TP", "HOTA_FN", "HOTA_FP")}
    w = np.maximum(1.0, res["HOTA_TP"])
    for k in ("AssRe", "AssPr", "AssA"):
        res[k] = sum(p[k] * p["HOTA_TP"] for p in parts) / w
    loca = sum(p["LocA"] * p["HOTA_TP"] for p in parts)
    res["LocA"] = np.maximum(1e-10, loca) / np.maximum(1e-10, res["HOTA_TP"])
    return _hota_final(res)


# ---------------------------------------------------------------------------------- CLEAR
CLEAR_SUMMED = ("CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag", "CLR_Frames", "MOTP_sum")


def clear_sequence(d: SequenceData, threshold: float = 0.5) -> dict:
    res = {k: 0 for k in CLEAR_SUMMED}
    res.update({k: 0.0 for k in ("MOTA", "MOTP", "MODA", "MTR", "PTR", "MLR", "CLR_Re", "CLR_Pr", "sMOTA")})
    if d.num_tracker_dets == 0:
        res["CLR_FN"], res["ML"], res["MLR"] = d.num_gt_dets, d.num_gt_ids, 1.0
        return res
    if d.num_gt_dets == 0:
        res["CLR_FP"], res["MLR"] = d.num_tracker_dets, 1.0
        return res
    n = d.num_gt_ids
    gt_count = np.zeros(n)
    gt_matched = np.zeros(n)
    frag = np.zeros(n)
    prev_id = np.full(n, np.nan)  # last tracker id matched to each gt id (any frame before)
    prev_step = np.full(n, np.nan)  # tracker id matched in the previous frame
    tp = fn = fp = idsw = 0
    motp = 0.0
    for g, r, sim in zip(d.gt_ids, d.tracker_ids, d.similarity):
        if len(g) == 0:
            fp += len(r)
            continue
        if len(r) == 0:
            fn += len(g)
            gt_count[g] += 1
            continue
        score = 1000.0 * (r[None, :] == prev_step[g[:, None]]) + sim
        score[sim < threshold - EPS] = 0
        rows, cols = linear_sum_assignment(-score)
        ok = score[rows, cols] > 0 + EPS
        rows, cols = rows[ok], cols[ok]
        mg, mt = g[rows], r[cols]
        before = prev_id[mg]
        idsw += int(np.sum(~np.isnan(before) & (mt != before)))
        gt_count[g] += 1
        gt_matched[mg] += 1
        not_tracked = np.isnan(prev_step)
        prev_id[mg] = mt
        prev_step[:] = np.nan
        prev_step[mg] = mt
        frag += not_tracked & ~np.isnan(prev_step)
        k = len(mg)
        tp += k
        fn += len(g) - k
        fp += len(r) - k
        if k:
            motp += float(sum(sim[rows, cols]))
    seen = gt_count > 0
    ratio = gt_matched[seen] / gt_count[seen]
    res.update(CLR_TP=tp, CLR_FN=fn, CLR_FP=fp, IDSW=idsw, MOTP_sum=motp, CLR_Frames=d.num_timesteps)
    res["MT"] = int(np.sum(ratio > 0.8))
    res["PT"] = int(np.sum(ratio >= 0.2)) - res["MT"]
    res["ML"] = n - res["MT"] - res["PT"]
    res["Frag"] = int(np.sum(frag[frag > 0] - 1))
    return _clear_final(res)


def _clear_final(res: dict) -> dict:
    tp, fn, fp, idsw = res["CLR_TP"], res["CLR_FN"], res["CLR_FP"], res["IDSW"]
    ids = max(1.0, res["MT"] + res["ML"] + res["PT"])
    gt = max(1.0, tp + fn)
    res["MTR"], res["MLR"], res["PTR"] = res["MT"] / ids, res["ML"] / ids, res["PT"] / ids
    res["CLR_Re"] = tp / gt
    res["CLR_Pr"] = tp / max(1.0, tp + fp)
    res["MODA"] = (tp - fp) / gt
    res["MOTA"] = (tp - fp - idsw) / gt
    res["MOTP"] = res["MOTP_sum"] / max(1.0, tp)
    res["sMOTA"] = (res["MOTP_sum"] - fp - idsw) / gt
    return res


def clear_combine(parts: list[dict]) -> dict:
    return _clear_final({k: sum(p[k] for p in parts) for k in CLEAR_SUMMED})


# ------------------------------------------------------------------------------- Identity
def identity_sequence(d: SequenceData, threshold: float = 0.5) -> dict:
    res = {"IDTP": 0, "IDFN": 0, "IDFP": 0, "IDF1": 0.0, "IDR": 0.0, "IDP": 0.0}
    if d.num_tracker_dets == 0:
        res["IDFN"] = d.num_gt_dets
        return res
    if d.num_gt_dets == 0:
        res["IDFP"] = d.num_tracker_dets
        return res
    ng, nt = d.num_gt_ids, d.num_tracker_ids
    potential = np.zeros((ng, nt))
    gt_count = np.zeros(ng)
    tr_count = np.zeros(nt)
    for g, r, sim in zip(d.gt_ids, d.tracker_ids, d.similarity):
        gi, ti = np.nonzero(sim >= threshold)
        np.add.at(potential, (g[gi], r[ti]), 1)
        np.add.at(gt_count, g, 1)
        np.add.at(tr_count, r, 1)
    size = ng + nt
    fp_mat = np.zeros((size, size))
    fn_mat = np.zeros((size, size))
    fp_mat[ng:, :nt] = 1e10
    fn_mat[:ng, nt:] = 1e10
    fn_mat[:ng, :nt] = gt_count[:, None]
    fn_mat[np.arange(ng), nt + np.arange(ng)] = gt_count
    fp_mat[:ng, :nt] = tr_count[None, :]
    fp_mat[ng + np.arange(nt), np.arange(nt)] = tr_count
    fn_mat[:ng, :nt] -= potential
    fp_mat[:ng, :nt] -= potential
    rows, cols = linear_sum_assignment(fn_mat + fp_mat)
    res["IDFN"] = int(fn_mat[rows, cols].sum())
    res["IDFP"] = int(fp_mat[rows, cols].sum())
    res["IDTP"] = int(gt_count.sum() - res["IDFN"])
    return _identity_final(res)


def _identity_final(res: dict) -> dict:
    tp, fn, fp = res["IDTP"], res["IDFN"], res["IDFP"]
    res["IDR"] = tp / max(1.0, tp + fn)
    res["IDP"] = tp / max(1.0, tp + fp)
    res["IDF1"] = tp / max(1.0, tp + 0.5 * fp + 0.5 * fn)
    return res


def identity_combine(parts: list[dict]) -> dict:
    return _identity_final({k: sum(p[k] for p in parts) for k in ("IDTP", "IDFN", "IDFP")})


# -------------------------------------------------------------------------------- summary
def summarize(hota: dict, clear: dict, identity: dict) -> dict:
    """Flat dict of the headline metrics (fractions, HOTA family averaged over alpha)."""
    out = {k: float(np.mean(hota[k])) for k in ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")}
    out["HOTA(0)"] = float(hota["HOTA"][0])
    out["LocA(0)"] = float(hota["LocA"][0])
    out.update(MOTA=float(clear["MOTA"]), MOTP=float(clear["MOTP"]), MODA=float(clear["MODA"]),
               IDF1=float(identity["IDF1"]), IDP=float(identity["IDP"]), IDR=float(identity["IDR"]))
    out.update(IDSW=int(clear["IDSW"]), FP=int(clear["CLR_FP"]), FN=int(clear["CLR_FN"]), TP=int(clear["CLR_TP"]),
               Frag=int(clear["Frag"]), MT=int(clear["MT"]), PT=int(clear["PT"]), ML=int(clear["ML"]),
               IDTP=int(identity["IDTP"]), IDFP=int(identity["IDFP"]), IDFN=int(identity["IDFN"]))
    return out


def evaluate_sequences(items: list[tuple[str, SequenceData]]) -> dict:
    """{"HOTA": ..., ..., "sequences": {name: {...}}} for preprocessed sequences."""
    per_h, per_c, per_i, seqs = [], [], [], {}
    for name, data in items:
        h, c, i = hota_sequence(data), clear_sequence(data), identity_sequence(data)
        per_h.append(h)
        per_c.append(c)
        per_i.append(i)
        seqs[name] = summarize(h, c, i)
    result = summarize(hota_combine(per_h), clear_combine(per_c), identity_combine(per_i)) if items else {}
    result["sequences"] = seqs
    return result


def evaluate_mot(gt_dir: str | Path, results_dir: str | Path, benchmark: str = "MOT17", do_preproc: bool = True,
                 sequences: list[str] | None = None) -> dict:
    """Evaluate `results_dir/<seq>.txt` against `gt_dir/<seq>/gt/gt.txt` (MOTChallenge layout).

    Returns the combined metrics (HOTA, DetA, AssA, LocA, MOTA, MOTP, IDF1, IDP, IDR, IDSW, FP,
    FN, Frag, MT, ML, ...) plus "sequences": {seq: metrics}. A sequence without a results file
    is an error (an empty file means "no tracks").
    """
    results_dir = Path(results_dir)
    seq_dirs = find_sequences(gt_dir)
    if sequences is not None:
        wanted = set(sequences)
        seq_dirs = [s for s in seq_dirs if s.name in wanted]
    items = []
    for seq in seq_dirs:
        gt_path = seq / "gt" / "gt.txt"
        if not gt_path.is_file():
            raise DataError(f"{gt_path}: ground truth not found")
        res_path = results_dir / f"{seq.name}.txt"
        if not res_path.is_file():
            raise DataError(f"{res_path}: tracker results for sequence '{seq.name}' not found")
        info = read_seqinfo(seq)
        gt = read_mot_txt(gt_path, "gt")
        tr = read_mot_txt(res_path, "result")
        items.append((seq.name, preprocess_sequence(gt, tr, info["seqLength"], benchmark, do_preproc,
                                                    str(gt_path), str(res_path))))
    return evaluate_sequences(items)
