"""The README's "Everyday use" block is executable: extracted from README.md and run line by
line with bash in an empty folder, with only the schedule shrunk (fewer images and frames, one
epoch). Each line must exit 0, and the data made by the first line is what the later ones use."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The only edits to the block: a tiny schedule. Each pattern must occur (the test fails when the
# README changes so that the shrinking no longer applies).
TINY = (
    ("--num-train 600", "--num-train 8"),
    ("--num-val 100", "--num-val 4"),
    ("--size 192", "--size 64"),
    ("--min-object-size 20 --max-object-size 96", "--min-object-size 12 --max-object-size 32"),
    ("--epochs 14", "--epochs 1 --img-size 64 64 --batch-size 4 --set data.train.num_workers=0 "
                    "--set data.val.num_workers=0 --set data.test.num_workers=0 --set train.val_interval=1"),
    ("--frames 60", "--frames 12"),
)


def everyday_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Everyday use"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_block_is_a_chain_on_its_own_data():
    lines = everyday_block()
    assert lines[0].startswith("det synth shapes data/shapes")
    assert any("det train" in ln and "--data data/shapes" in ln for ln in lines)
    assert any("det confusion-matrix" in ln and "data/shapes/instances_val.json" in ln for ln in lines)
    for old, _ in TINY:
        assert any(old in ln for ln in lines), f"README no longer has '{old}'"


@pytest.mark.slow
def test_readme_everyday_block_runs(tmp_path):
    lines = everyday_block()
    script = []
    for line in lines:
        for old, new in TINY:
            line = line.replace(old, new)
        script.append(line)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "det").write_text(f"#!/bin/sh\nexec {sys.executable} -m det.cli \"$@\"\n")
    (bindir / "det").chmod(0o755)
    if shutil.which("jq") is None:  # CI images without jq: the same filter in Python
        (bindir / "jq").write_text(f"#!{sys.executable}\nimport json, sys\n"
                                   "for line in sys.stdin:\n    print(json.dumps(json.loads(line)['scores']))\n")
        (bindir / "jq").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "DET_NUM_WORKERS": "0"}
    for line in script:
        r = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=work, env=env, capture_output=True, text=True,
                           timeout=600)
        if r.returncode == 141 or (r.returncode != 0 and "| head" in line and "Broken pipe" in r.stderr):
            continue  # `| head` closing the pipe early is the reader leaving, not a failure
        assert r.returncode == 0, f"{line}\n{r.stderr[-2000:]}"
    run = work / "runs" / "train" / "shapes"
    for name in ("last.pt", "results.png", "pr_curve.png", "per_class_ap.csv", "val_predictions.jpg"):
        assert (run / name).is_file(), name
    metrics = json.loads((work / "runs" / "test" / "shapes" / "metrics.json").read_text())
    assert metrics["data"]["ann_file"].endswith("data/shapes/instances_val.json")  # the data made in line 1
    for name in ("results.json", "results_tta.json", "fused.json", "loss.png", "runs/cm/confusion_matrix.png"):
        assert (work / name).is_file(), name
