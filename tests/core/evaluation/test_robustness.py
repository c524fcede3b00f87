"""Robustness benchmark: corruption/severity parsing, P / mPC / rPC on hand-made numbers, the
Corrupt transform, `det test --corrupt` end to end and the missing-extra hint."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from det.core.errors import DetError
from det.core.evaluation.robustness import parse_corruptions, parse_severities, summarize, table_csv


def test_parsing():
    assert parse_corruptions("benchmark")[:3] == ["gaussian_noise", "shot_noise", "impulse_noise"]
    assert len(parse_corruptions("benchmark")) == 15 and len(parse_corruptions("all")) == 19
    assert parse_corruptions("motion_blur,noise,motion_blur") == ["motion_blur", "gaussian_noise", "shot_noise",
                                                                  "impulse_noise"]
    assert parse_severities("1-5") == [1, 2, 3, 4, 5] and parse_severities("1,3-4") == [1, 3, 4]
    with pytest.raises(DetError, match="did you mean 'motion_blur'"):
        parse_corruptions("motion_blr")
    for bad in ("0-2", "6", "a"):
        with pytest.raises(DetError, match="--severity"):
            parse_severities(bad)


def test_p_mpc_rpc_and_table():
    clean = {"m": 0.5, "n": 0.0}
    table = {"a": {1: {"m": 0.4, "n": 0.1}, 2: {"m": 0.2, "n": 0.1}}, "b": {1: {"m": 0.3, "n": 0.1}, 2: {"m": 0.1, "n": 0.1}}}
    got = summarize(clean, table)
    assert got["P"] == {"m": 0.5, "n": 0.0}
    assert got["mPC"]["m"] == pytest.approx(0.25) and got["rPC"]["m"] == pytest.approx(0.5)
    assert np.isnan(got["rPC"]["n"])  # no clean performance to relate to
    assert table_csv(table, ["m"]).splitlines() == ["corruption,severity,m", "a,1,0.400000", "a,2,0.200000",
                                                    "b,1,0.300000", "b,2,0.100000"]


def test_corrupt_transform_changes_the_image_more_at_higher_severity():
    from det.core.data.transforms import TRANSFORMS

    img = np.full((32, 48, 3), 128, np.uint8)
    img[:, :, 0] = 30
    diffs = []
    for sev in (1, 5):
        np.random.seed(0)
        out = TRANSFORMS["Corrupt"]("gaussian_noise", sev).transform({"img": img.copy()})["img"]
        assert out.shape == img.shape and out.dtype == np.uint8
        diffs.append(np.abs(out.astype(int) - img).mean())
    assert 0 < diffs[0] < diffs[1]


@pytest.mark.slow
def test_det_test_corrupt(det_inproc, tiny_checkpoint, tmp_path):
    r = det_inproc("test", tiny_checkpoint, "--corrupt", "gaussian_noise,pixelate", "--severity", "1-2",
                   "-w", tmp_path / "rob", "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    clean = json.loads((tmp_path / "rob" / "clean" / "metrics.json").read_text())["metrics"]
    key = "coco/bbox_mAP"
    assert report["P"][key] == clean[key]
    rows = [report["table"][n][s][key] for n in ("gaussian_noise", "pixelate") for s in ("1", "2")]
    assert report["mPC"][key] == pytest.approx(np.mean(rows))
    assert (tmp_path / "rob" / "robustness.png").stat().st_size > 0
    assert len((tmp_path / "rob" / "robustness.csv").read_text().splitlines()) == 5
    r = det_inproc("test", tiny_checkpoint, "--corrupt", "gaussian_noise", "--severity", "1", "-w", tmp_path / "rob")
    assert r.returncode == 2 and "robustness.json" in r.stderr  # no overwrite without --force


def test_missing_extra_is_a_one_line_hint(det_inproc, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "imagecorruptions", None)
    r = det_inproc("test", tmp_path / "none.pt", "--corrupt", "gaussian_noise")
    assert r.returncode == 2, r.stderr
    assert "pip install 'det[robust]'" in r.stderr and "Traceback" not in r.stderr
