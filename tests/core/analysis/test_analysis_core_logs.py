"""Training-log reading (three formats), train time by hand, summary, curves and plots."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from logfixtures import EPOCHS, ITERS, iter_time, loss, write_all, write_jsonl  # noqa: E402

from det.core.analysis import logs as L
from det.core.errors import DetError


@pytest.fixture
def paths(tmp_path):
    return write_all(tmp_path)


def hand_train_time(include_outliers: bool) -> dict:
    means = []
    for ep in range(1, EPOCHS + 1):
        ks = range(ITERS) if include_outliers else range(1, ITERS)
        means.append(sum(iter_time(ep, k) for k in ks) / len(ks))
    mu = sum(means) / len(means)
    std = (sum((m - mu) ** 2 for m in means) / len(means)) ** 0.5
    slow = max(range(EPOCHS), key=lambda i: means[i])
    fast = min(range(EPOCHS), key=lambda i: means[i])
    return {"slowest_epoch": slow + 1, "slowest_time": means[slow], "fastest_epoch": fast + 1,
            "fastest_time": means[fast], "std_over_epochs": std, "average_iter_time": mu}


@pytest.mark.parametrize("fmt", ["det", "mmdet3", "mmdet2"])
@pytest.mark.parametrize("include", [False, True])
def test_train_time_equals_hand_computed(paths, fmt, include):
    got = L.train_time(L.load_log(paths[fmt]), include)
    want = hand_train_time(include)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    assert got["epochs"] == EPOCHS


def test_formats_detected_and_epochs_grouped(paths):
    assert L.load_log(paths["mmdet2"]).format == "mmdet2"
    for fmt in ("det", "mmdet3"):
        run = L.load_log(paths[fmt])
        assert run.format == "scalars"
        # every record is filed under its own epoch; validation under the epoch it closes
        val = run.series("coco/bbox_mAP")
        assert [r.epoch for r in val] == [1, 2, 3]
        assert [r.step for r in val] == [40, 80, 120]  # at the last training step of the epoch
        train = run.series("loss")
        assert [r.epoch for r in train] == [ep for ep in range(1, EPOCHS + 1) for _ in range(ITERS)]
    v2 = L.load_log(paths["mmdet2"])
    assert [r.step for r in v2.series("bbox_mAP")] == [40, 80, 120]
    assert [r.step for r in v2.series("loss")][:5] == [10, 20, 30, 40, 50]
    assert len(v2.series("lr")) == EPOCHS * ITERS  # training lr, not the copies in val records


def test_short_key_names_and_missing_key(paths):
    run = L.load_log(paths["mmdet3"])
    assert run.resolve_key("bbox_mAP") == "coco/bbox_mAP"
    with pytest.raises(DetError, match=r"scalars.json: no key 'bbox_mAR'.*it has: .*loss_cls"):
        run.resolve_key("bbox_mAR")


def test_summary_last_and_best(paths):
    for fmt in ("det", "mmdet3", "mmdet2"):
        s = L.summary(L.load_log(paths[fmt]))["keys"]
        map_key = "bbox_mAP" if fmt == "mmdet2" else "coco/bbox_mAP"
        assert s[map_key]["last"] == pytest.approx(0.3) and s[map_key]["best"] == pytest.approx(0.3)
        assert s[map_key]["best_epoch"] == 3
        assert s["loss"]["last"] == pytest.approx(loss(EPOCHS, ITERS - 1))
        assert s["loss"]["best"] == pytest.approx(min(loss(e, k) for e in range(1, 4) for k in range(ITERS)))
        assert s["lr"]["best"] is None  # no "best" learning rate


def test_curves_smoothing_and_epoch_axis(paths):
    run = L.load_log(paths["det"])
    xs, ys = L.curve(run, "loss", "step", 1)
    assert xs.tolist() == [10.0 * i for i in range(1, EPOCHS * ITERS + 1)]
    _, sm = L.curve(run, "loss", "step", 3)
    raw = np.array([loss(e, k) for e in range(1, EPOCHS + 1) for k in range(ITERS)])
    assert sm[5] == pytest.approx(raw[3:6].mean()) and sm[0] == pytest.approx(raw[0])
    xe, _ = L.curve(run, "loss", "epoch")
    assert xe[:ITERS].tolist() == pytest.approx([0.25, 0.5, 0.75, 1.0])
    xv, yv = L.curve(run, "bbox_mAP", "epoch")
    assert xv.tolist() == [1, 2, 3] and yv.tolist() == pytest.approx([0.1, 0.2, 0.3])


@pytest.mark.parametrize("ext", ["png", "pdf", "svg"])
def test_plot_written_non_empty(paths, tmp_path, ext):
    runs = [L.load_log(paths[f]) for f in ("det", "mmdet3", "mmdet2")]
    res = L.plot_logs(runs, ["loss", "bbox_mAP"], tmp_path / f"c.{ext}", legend=["a", "b", "c"], title="t", smooth=2)
    out = tmp_path / f"c.{ext}"
    assert out.stat().st_size > 5000
    assert res["points"]["a"] == {"loss": EPOCHS * ITERS, "bbox_mAP": EPOCHS}
    head = out.read_bytes()[:8]
    assert head.startswith({"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}[ext])


def test_bad_logs(tmp_path):
    with pytest.raises(DetError, match="nolog.json: log file not found"):
        L.load_log(tmp_path / "nolog.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"loss": 1, "step": 1}\n{oops\n{"loss": 2, "step": 2}\n')
    with pytest.raises(DetError, match=r"bad.json:2: not a JSON Lines"):
        L.load_log(bad)
    lst = write_jsonl(tmp_path / "list.json", [[1, 2]])  # type: ignore[list-item]
    with pytest.raises(DetError, match="list.json:1: expected one JSON object"):
        L.load_log(lst)
    nums = write_jsonl(tmp_path / "nonum.json", [{"a": "x", "b": "y"}])
    with pytest.raises(DetError, match="nonum.json: no numeric"):
        L.load_log(nums)
