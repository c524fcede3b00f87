"""Hostile work dirs: an old run's checkpoints never cost the current run its own, `--force`
moves the old run aside (saying so), and the closing message names only files that exist."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import TINY_DEMO_OVERRIDES


def _args(*extra: str) -> list[str]:
    out = []
    for item in (*TINY_DEMO_OVERRIDES, "data.train.dataset.num_train=2", *extra):
        out += ["--set", item]
    return out


def _named_outputs(stderr: str) -> tuple[Path, list[str]]:
    text = " ".join(stderr.split())
    m = re.search(r"outputs in (\S+): (.+?)(?: peak memory|$)", text)
    assert m, stderr
    return Path(m.group(1)), [n.strip() for n in m.group(2).split(",")]


@pytest.mark.slow
def test_pruning_keeps_the_current_runs_checkpoints(tmp_path, det_inproc, tiny_checkpoint):
    work = tmp_path / "run"
    work.mkdir()
    shutil.copy(tiny_checkpoint, work / "epoch_9.pt")  # an older run's file ranks higher by number
    r = det_inproc("train", "demo/rtmdet_tiny", "--work-dir", work, "--device", "cpu",
                   *_args("train.max_epochs=2", "train.checkpoint.max_keep=1"))
    assert r.returncode == 0, r.stderr
    assert (work / "epoch_2.pt").is_file()  # the newest of this run survives
    assert not (work / "epoch_1.pt").exists()  # pruned: beyond max_keep among this run's own files
    assert (work / "epoch_9.pt").read_bytes() == tiny_checkpoint.read_bytes()  # not ours: left alone
    where, names = _named_outputs(r.stderr)
    assert "epoch_2.pt" in names and all((where / n).exists() for n in names)


@pytest.mark.slow
def test_force_moves_the_old_run_aside_and_says_so(tmp_path, det_inproc, tiny_checkpoint):
    work = tmp_path / "run"
    work.mkdir()
    for name in ("last.pt", "epoch_5.pt", "best_coco_bbox_mAP.pt"):
        shutil.copy(tiny_checkpoint, work / name)
    (work / "log.jsonl").write_text('{"mode": "train", "step": 10}\n')
    r = det_inproc("train", "demo/rtmdet_tiny", "--work-dir", work, "--device", "cpu", *_args())
    assert r.returncode == 2 and "--force" in r.stderr
    r = det_inproc("train", "demo/rtmdet_tiny", "--work-dir", work, "--device", "cpu", "--force", *_args())
    assert r.returncode == 0, r.stderr
    moved = work / "previous_run_1"
    assert sorted(p.name for p in moved.iterdir()) == ["best_coco_bbox_mAP.pt", "epoch_5.pt", "last.pt", "log.jsonl"]
    assert "movedtheearlierrun" in "".join(r.stderr.split()) and "previous_run_1" in "".join(r.stderr.split())
    assert not (work / "epoch_5.pt").exists() and (work / "epoch_1.pt").is_file()
    assert '"step": 10' not in (work / "log.jsonl").read_text()


@pytest.mark.slow
def test_closing_message_names_only_existing_files(tmp_path, det_inproc, tiny_checkpoint):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(tiny_checkpoint, elsewhere / "epoch_1.pt")  # a finished 1-epoch run, resumed into a new dir
    work = tmp_path / "new"
    r = det_inproc("train", "demo/rtmdet_tiny", "--work-dir", work, "--device", "cpu",
                   "--resume", elsewhere / "epoch_1.pt", *_args())
    assert r.returncode == 0, r.stderr
    where, names = _named_outputs(r.stderr)
    assert where == work
    for name in names:
        assert (where / name).exists() or Path(name).is_file(), f"{name} named but missing"
    assert str(elsewhere / "epoch_1.pt") in names
