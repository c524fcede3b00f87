"""`det mot-search` end to end (and `det synth mot` once registered): files, formats, exit codes."""
import csv
import json

import pytest

from det.cli.main import main
from det.core.tracking.synth import generate_mot


def run_inline(capsys, *args):
    """`det ARGS` in this process (same entry point and exit-code handling, no start-up cost)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("motcli")
    generate_mot(root / "seqs", seqs=2, frames=40, seed=2, width=160, height=120, write_images=False, progress=False)
    return root


def test_mot_search_public_grid_csv_and_best_line(det, capsys, data):
    out = data / "results.csv"
    r = det("mot-search", "trackers/bytetrack", "--data", data / "seqs", "--public",
                "--set", "tracker.match_iou_thr=[0.1,0.3,0.5]", "--set", "tracker.obj_score_thr=[0.5,0.6]",
                "--metric", "MOTA", "--jobs", "2", "--out", out, "--plot", data / "search.png")
    assert r.returncode == 0, r.stderr
    assert (data / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "best (MOTA" in r.stdout and "--set tracker.obj_score_thr=" in r.stdout
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6
    assert {"tracker.match_iou_thr", "tracker.obj_score_thr", "HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN"} <= set(rows[0])
    motas = [float(row["MOTA"]) for row in rows]
    assert motas == sorted(motas, reverse=True)
    best = rows[0]
    assert f"--set tracker.obj_score_thr={best['tracker.obj_score_thr']} --set tracker.match_iou_thr={best['tracker.match_iou_thr']}" in r.stdout
    code, _, err = run_inline(capsys, "mot-search", "trackers/bytetrack", "--data", data / "seqs", "--public", "--out", out)
    assert code == 2 and "already exists" in err


def test_mot_search_json_and_detection_cache(det, data):
    cache = data / "cache"
    cache.mkdir()
    for seq in ("SYNTH-01", "SYNTH-02"):
        (cache / f"{seq}.txt").write_text((data / "seqs" / seq / "det" / "det.txt").read_text())
    r = det("mot-search", "trackers/sort", "--data", data / "seqs", "--detections", cache,
                "--set", "tracker.match_iou_thr=[0.2,0.4]", "--json", "--out", data / "r.json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["params"] == ["tracker.match_iou_thr"] and len(res["rows"]) == 2
    assert res["best_set"].startswith("--set tracker.match_iou_thr=")
    assert json.loads((data / "r.json").read_text())["rows"] == res["rows"]


def test_malformed_gt_and_det_lines_exit_2_naming_file_and_line(capsys, tmp_path):
    generate_mot(tmp_path / "bad", seqs=1, frames=10, seed=3, width=96, height=96, write_images=False, progress=False)
    gt = tmp_path / "bad" / "SYNTH-01" / "gt" / "gt.txt"
    lines = gt.read_text().splitlines()
    lines[2] = "3,1,10,20,thirty,40,1,1,1"
    gt.write_text("\n".join(lines) + "\n")
    code, _, err = run_inline(capsys, "mot-search", "trackers/bytetrack", "--data", tmp_path / "bad", "--public")
    assert code == 2
    assert f"{gt}:3: 'thirty' is not a number" in err
    gt.write_text("1,1,10,20,30,40,1,1,1\n")
    det_txt = tmp_path / "bad" / "SYNTH-01" / "det" / "det.txt"
    det_txt.write_text("1,-1,10,20,30,40,0.9\n2,-1,10,20\n")
    code, _, err = run_inline(capsys, "mot-search", "trackers/bytetrack", "--data", tmp_path / "bad", "--public")
    assert code == 2 and f"{det_txt}:2: expected at least 6" in err


def test_mot_search_option_errors(capsys, data):
    code, _, err = run_inline(capsys, "mot-search", "trackers/bytetrack", "--data", data / "seqs", "--public",
                              "--set", "tracker.match_iou=[0.1,0.2]")
    assert code == 2 and "tracker.match_iou: unknown key" in err and "match_iou_thr" in err
    code, _, err = run_inline(capsys, "mot-search", "trackers/bytetrack", "--data", data / "seqs")
    assert code == 2 and "no detections" in err
    code, _, err = run_inline(capsys, "mot-search", "trackers/bytetrack", "--data", data / "seqs", "--public",
                              "--metric", "MOTTA")
    assert code == 2 and "did you mean 'MOTA'" in err


def test_synth_mot_writes_motchallenge_sequences_deterministically(det, capsys, tmp_path):
    args = ["--seqs", "2", "--frames", "8", "--seed", "4", "--width", "96", "--height", "80"]
    r = det("synth", "mot", tmp_path / "a", *args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(tmp_path / "a" / "SYNTH-01"), str(tmp_path / "a" / "SYNTH-02")]
    seq = tmp_path / "a" / "SYNTH-01"
    assert sorted(p.name for p in (seq / "img1").iterdir()) == [f"{i:06d}.jpg" for i in range(1, 9)]
    assert "seqLength=8" in (seq / "seqinfo.ini").read_text()
    code, stdout, _ = run_inline(capsys, "synth", "mot", tmp_path / "b", *args, "--json")
    assert code == 0 and json.loads(stdout)["sequences"] == ["SYNTH-01", "SYNTH-02"]
    for rel in ("gt/gt.txt", "det/det.txt", "img1/000005.jpg"):
        assert (seq / rel).read_bytes() == (tmp_path / "b" / "SYNTH-01" / rel).read_bytes()
    code, _, err = run_inline(capsys, "synth", "mot", tmp_path / "a", *args)
    assert code == 2 and "not empty" in err


@pytest.mark.slow
def test_mot_search_runs_a_detector_checkpoint_once_and_caches(capsys, tmp_path):
    import torch

    from det.core.config import load_preset
    from det.core.models import build_detector
    from det.core.data.mot_io import read_mot_txt

    generate_mot(tmp_path / "seqs", seqs=1, frames=3, seed=0, width=96, height=96, progress=False)
    cfg = load_preset("demo/rtmdet_tiny")
    torch.manual_seed(0)
    model = build_detector(cfg["model"])
    torch.save({"state_dict": model.state_dict(), "preset": cfg, "meta": {"classes": cfg["data"]["classes"]}},
               tmp_path / "model.pt")
    args = ["mot-search", "trackers/sort", "--data", tmp_path / "seqs", "--detections", tmp_path / "cache",
            "--weights", tmp_path / "model.pt", "--det-score-thr", "0", "--json"]
    code, stdout, err = run_inline(capsys, *args)
    assert code == 0, err
    cached = tmp_path / "cache" / "SYNTH-01.txt"
    rows = read_mot_txt(cached, "det")
    assert set(rows[:, 0].astype(int)) == {1, 2, 3}  # every frame went through the detector
    assert len(json.loads(stdout)["rows"]) == 1
    stamp = cached.stat().st_mtime_ns
    code, _, err = run_inline(capsys, *args)  # second search: served from the cache
    assert code == 0, err
    assert cached.stat().st_mtime_ns == stamp
