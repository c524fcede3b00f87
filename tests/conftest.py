"""Shared fixtures: a `det` runner that goes through the real entry point (exit codes included)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
