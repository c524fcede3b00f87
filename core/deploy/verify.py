"""Verification of an export: the same sample batch through PyTorch and through the exported
file in its runtime; boxes within 1e-2 px, scores within 1e-3 and the same labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

BOX_TOL, SCORE_TOL = 1e-2, 1e-3
MASK_TOL = 1e-2  # pasted masks: differing pixels / union pixels of a matched pair (threshold-edge flips)


def sample_image(imgsz: tuple[int, int]) -> np.ndarray:
    """A deterministic synthetic-shapes image (BGR uint8) filling the export size."""
    from det.core.data.synthetic.shapes import render_image

    img, _ = render_image(0, "val", 0, max(imgsz))
    return np.ascontiguousarray(img[: imgsz[0], : imgsz[1]])


def verify_export(detector, path: Path, fmt: str, imgsz: tuple[int, int], batch: int) -> dict:
    """Compare the raw detections (before det infer's score filter) of both runs."""
    from det.core.deploy.runtimes import RUNTIME_OF_FORMAT
    from det.core.apis.backends import ExportedDetector

    exported = ExportedDetector.from_file(path, RUNTIME_OF_FORMAT[fmt], score_thr=0.0)
    img = sample_image(imgsz)
    prepared = [detector.preprocess(np.ascontiguousarray(np.roll(img, 16 * i, axis=1)), f"sample{i}") for i in range(batch)]
    inputs, samples = detector.collate(prepared)
    ref = detector.forward(inputs, samples)
    inputs, samples = exported.collate(prepared)
    got = exported.forward(inputs, samples)
    from det.core.deploy.sidecar import final_settings

    cfg = final_settings(detector.model)
    stats = [compare(r, g, cfg.score_thr, cfg.max_per_img) for r, g in zip(ref, got)]
    n = sum(s["compared"] for s in stats)
    box = max(s["box"] for s in stats)
    score = max(s["score"] for s in stats)
    problems = [p for s in stats for p in s["problems"]]
    mask = max((s["mask"] for s in stats if s["mask"] is not None), default=None)
    ok = not problems and box <= BOX_TOL and score <= SCORE_TOL and (mask is None or mask <= MASK_TOL)
    summary = (f"verify ({RUNTIME_OF_FORMAT[fmt]} vs PyTorch): {n} detections in {batch} image(s), max box diff {box:.2e} px "
               f"(tol {BOX_TOL}), max score diff {score:.2e} (tol {SCORE_TOL}), "
               + (f"max mask pixel disagreement {mask:.2e} (tol {MASK_TOL}), " if mask is not None else "")
               + ("labels equal" if not problems else "; ".join(problems[:3])))
    if n == 0:
        summary += " (warning: the sample image gave no detections above score_thr, so only their absence was compared)"
    return {"ok": ok, "compared": n, "max_box_diff": box, "max_score_diff": score, "max_mask_diff": mask,
            "problems": problems, "summary": summary}


def _arrays(inst) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def arr(t):
        return t.detach().float().cpu().numpy() if t.is_floating_point() else t.cpu().numpy()
    return arr(inst.bboxes).reshape(-1, 4), arr(inst.scores).reshape(-1), arr(inst.labels).reshape(-1)


def compare(ref, got, score_thr: float, max_per_img: int) -> dict:
    """Match detections scoring clearly above the threshold (and above the last kept one when
    max_per_img truncated), each to the closest unmatched box of the same label."""
    rb, rs, rl = _arrays(ref)
    gb, gs, gl = _arrays(got)
    cut = score_thr + SCORE_TOL
    if len(rs) >= max_per_img:
        cut = max(cut, float(rs.min()) + SCORE_TOL)
    r_keep, g_keep = rs > cut, gs > cut
    problems = []
    if r_keep.sum() != g_keep.sum():
        problems.append(f"{int(r_keep.sum())} detections in PyTorch, {int(g_keep.sum())} exported")
    box_diff, score_diff, used = 0.0, 0.0, np.zeros(len(gs), bool)
    with_masks = getattr(ref, "masks", None) is not None and getattr(got, "masks", None) is not None
    mask_diff = 0.0 if with_masks else None
    for i in np.flatnonzero(r_keep):
        cand = np.flatnonzero(g_keep & ~used & (gl == rl[i]))
        if not len(cand):
            problems.append(f"no exported match for label {int(rl[i])} score {rs[i]:.4f}")
            continue
        d = np.abs(gb[cand] - rb[i]).max(1)
        j = cand[int(d.argmin())]
        used[j] = True
        box_diff, score_diff = max(box_diff, float(d.min())), max(score_diff, abs(float(gs[j] - rs[i])))
        if with_masks:
            mask_diff = max(mask_diff, _mask_disagreement(ref.masks[i], got.masks[j]))
    return {"compared": int(r_keep.sum()), "box": box_diff, "score": score_diff, "mask": mask_diff,
            "problems": problems}


def _mask_disagreement(a, b) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float((a ^ b).sum()) / max(float((a | b).sum()), 1.0)
