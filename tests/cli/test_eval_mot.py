"""`det eval --mot GT_DIR TRACKS_DIR`: per-sequence and combined HOTA/CLEAR/Identity of another
tracker's MOTChallenge files, equal to det.core.evaluation.mot (itself held to TrackEval's values
in tests/core/evaluation/test_mot_metrics.py; benchmarks/parity/eval_mot.py runs TrackEval live)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from det.core.evaluation.mot import evaluate_mot
from det.core.data.mot_io import find_sequences, read_mot_txt, write_mot_txt
from det.core.tracking.synth import generate_mot


@pytest.fixture(scope="module")
def mot_case(tmp_path_factory):
    """Two synthetic sequences and a 'foreign tracker': ground truth with jitter, dropped boxes and swapped ids."""
    root = tmp_path_factory.mktemp("evalmot")
    generate_mot(root / "gt", seqs=2, frames=30, seed=4, width=160, height=120, write_images=False, progress=False)
    rng = np.random.default_rng(0)
    tracks = root / "tracks"
    tracks.mkdir()
    for seq in find_sequences(root / "gt"):
        gt = read_mot_txt(seq / "gt" / "gt.txt", "gt")
        rows = gt[(gt[:, 6] > 0) & (rng.random(len(gt)) > 0.15)].copy()
        rows[:, 2:6] += rng.normal(0, 1.5, (len(rows), 4))
        rows[:, 1] = np.where(rows[:, 0] > 20, (rows[:, 1] * 7) % 11 + 1, rows[:, 1])  # identity switches
        rows[:, 6], rows[:, 7:] = 1.0, -1
        write_mot_txt(tracks / f"{seq.name}.txt", rows[:, :10])
    return root


def test_eval_mot_json_equals_core(det_inproc, mot_case):
    r = det_inproc("eval", "--mot", mot_case / "gt", mot_case / "tracks", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    ref = evaluate_mot(mot_case / "gt", mot_case / "tracks")
    assert res == json.loads(json.dumps(ref))
    assert set(res["sequences"]) == {s.name for s in find_sequences(mot_case / "gt")}
    assert 0.3 < res["HOTA"] < 0.99 and res["IDSW"] > 0


def test_eval_mot_table_and_errors(det_inproc, mot_case, tmp_path):
    r = det_inproc("eval", "--mot", mot_case / "gt", mot_case / "tracks")
    assert r.returncode == 0, r.stderr
    assert "COMBINED" in r.stdout and "HOTA" in r.stdout and "IDF1" in r.stdout
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in (mot_case / "tracks").iterdir():
        (bad / f.name).write_text(f.read_text())
    first = sorted(bad.iterdir())[0]
    first.write_text(first.read_text() + "3,1,oops,4,5\n")
    r = det_inproc("eval", "--mot", mot_case / "gt", bad)
    assert r.returncode == 2 and first.name in r.stderr and "Traceback" not in r.stderr
    first.unlink()
    r = det_inproc("eval", "--mot", mot_case / "gt", bad)
    assert r.returncode == 2 and first.name in r.stderr
    r = det_inproc("eval", "--mot", mot_case / "gt", tmp_path / "nowhere")
    assert r.returncode == 2 and "nowhere" in r.stderr
    r = det_inproc("eval", "results.json", "--mot", mot_case / "gt", mot_case / "tracks")
    assert r.returncode == 2 and "--mot" in r.stderr
