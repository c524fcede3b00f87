"""`det synth mot` generator: layout, determinism, realistic noise."""
import numpy as np
import pytest

from det.core.errors import DetError
from det.core.evaluation.mot import box_iou_xywh
from det.core.data.mot_io import read_mot_txt, read_seqinfo
from det.core.tracking.synth import generate_mot


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_determinism(tmp_path):
    a = generate_mot(tmp_path / "a", seqs=2, frames=20, seed=5, width=160, height=120, progress=False)
    generate_mot(tmp_path / "b", seqs=2, frames=20, seed=5, width=160, height=120, progress=False)
    generate_mot(tmp_path / "c", seqs=2, frames=20, seed=6, width=160, height=120, write_images=False, progress=False)
    assert [p.name for p in a] == ["SYNTH-01", "SYNTH-02"]
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert fa == fb
    assert len([k for k in fa if k.startswith("SYNTH-01/img1/") and k.endswith(".jpg")]) == 20
    assert fa["SYNTH-01/det/det.txt"] != _files(tmp_path / "c")["SYNTH-01/det/det.txt"]
    assert not (tmp_path / "c" / "SYNTH-01" / "img1").exists()
    info = read_seqinfo(a[0])
    assert (info["seqLength"], info["imWidth"], info["imHeight"]) == (20, 160, 120)
    with pytest.raises(DetError, match="not empty"):
        generate_mot(tmp_path / "a", seqs=1, frames=2, progress=False)


def test_noise_statistics(tmp_path):
    (seq,) = generate_mot(tmp_path, seqs=1, frames=300, seed=0, write_images=False, progress=False)
    gt = read_mot_txt(seq / "gt" / "gt.txt", "gt")
    det = read_mot_txt(seq / "det" / "det.txt", "det")
    peds = gt[gt[:, 7] == 1]
    assert len(np.unique(peds[:, 1])) > 10  # entries over time
    assert (gt[:, 7] == 7).any() and (gt[gt[:, 7] == 7, 6] == 0).all()  # a distractor, not considered
    assert ((gt[:, 8] >= 0) & (gt[:, 8] <= 1)).all() and (peds[:, 8] < 0.5).mean() > 0.03  # occlusions
    matched, fps, missed_vis, hit_vis = [], 0, [], []
    for f in range(1, 301):
        g, d = peds[peds[:, 0] == f], det[det[:, 0] == f]
        iou = box_iou_xywh(g[:, 2:6], d[:, 2:6])
        best = iou.max(1) if d.size else np.zeros(len(g))
        missed_vis += list(g[best < 0.5, 8])
        hit_vis += list(g[best >= 0.5, 8])
        fps += int(((iou.max(0) if g.size else np.zeros(len(d))) < 0.3).sum())
        matched += list(iou.max(0)[iou.max(0) >= 0.5]) if g.size and d.size else []
    recall = len(hit_vis) / (len(hit_vis) + len(missed_vis))
    assert 0.8 < recall < 0.97  # some misses
    assert np.mean(missed_vis) < np.mean(hit_vis)  # occluded objects are missed more often
    assert fps > 50  # false positives
    assert 0.75 < np.mean(matched) < 0.97  # jittered, not exact
    scores = det[:, 6]
    assert 0 < scores.min() and scores.max() < 1 and scores.std() > 0.1
