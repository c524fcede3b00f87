"""Shared fixtures: a `det` runner that goes through the real entry point (exit codes included)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# One compute thread per test process: `make test` runs one pytest worker per core, and oneDNN's
# spin barriers in convolution backward stall for minutes when two multi-threaded processes share
# two cores (seen as a hung Deformable DETR training step). Tests that measure threading set
# their own count. Subprocesses started by the tests inherit the variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO = Path(__file__).resolve().parents[1]


def run_det(*args: str, cwd: str | Path | None = None, input: str | None = None, env: dict | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m det.cli ARGS` in a subprocess and capture stdout/stderr as text."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "det.cli", *map(str, args)], cwd=cwd, input=input,
                          capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.fixture
def det():
    return run_det


@pytest.fixture
def det_inproc(capsys, monkeypatch):
    """Run `det ARGS` in this process through `det.cli.main.main` (same exit codes and output
    streams as the console script, without a Python start per call); returns a
    CompletedProcess-like object with returncode, stdout, stderr."""
    from det.cli.main import main

    def run(*args: str) -> subprocess.CompletedProcess:
        argv = ["det", *map(str, args)]
        monkeypatch.setattr(sys, "argv", argv)
        capsys.readouterr()
        code = 0
        try:
            main(argv[1:])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(argv, code, captured.out, captured.err)

    return run


# Overrides that shrink the RTMDet demo preset to seconds: 64 px synthetic shapes, 4 training
# and 2 validation (= test) images, one epoch of 2 iterations, no worker processes.
TINY_DEMO_OVERRIDES = (
    "data.train.dataset.num_train=4", "data.train.dataset.num_val=2", "data.train.dataset.size=64",
    "data.val.dataset.num_train=4", "data.val.dataset.num_val=2", "data.val.dataset.size=64",
    "data.test.dataset.num_train=4", "data.test.dataset.num_val=2", "data.test.dataset.size=64",
    *(f"data.{split}.dataset.{key}={value}" for split in ("train", "val", "test")
      for key, value in (("min_object_size", 8), ("max_object_size", 32))),
    "data.train.batch_size=2", "data.train.num_workers=0", "data.val.num_workers=0", "data.val.batch_size=2",
    "data.test.num_workers=0", "data.test.batch_size=2",
    "train.max_epochs=1", "train.val_interval=1", "train.log_interval=1", "train.checkpoint.interval=1",
)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Path to a real det checkpoint (`last.pt`) trained once per test session in a few seconds:
    `presets/demo/rtmdet_tiny.yaml` with TINY_DEMO_OVERRIDES (RTMDet-tiny, 6 shape classes,
    64 px synthetic images, 1 epoch of 2 iterations). It holds `state_dict`, `preset` (the
    resolved preset, whose `data.val` points at the cached synthetic data), `meta.classes` and
    the optimizer/RNG states, so `det test CKPT`, `det infer CKPT ...` and `--resume` work on it.
    Its predictions are those of an almost untrained model: check formats, not accuracy.
    The work dir (log.jsonl, metrics.json, preset.yaml) is the checkpoint's folder. Do not
    modify the file; copy it first."""
    from det.core.config import load_preset
    from det.core.engine.runner import train

    work_dir = tmp_path_factory.mktemp("tiny_checkpoint")
    cfg = load_preset("demo/rtmdet_tiny", list(TINY_DEMO_OVERRIDES))
    train(cfg, work_dir, device="cpu", seed=0)
    return work_dir / "last.pt"
