"""`make demo`: the main job on bundled synthetic data, run as a sequence of `det` commands.

Each step is the command a user would type; steps whose commands are not built yet are named
as such instead of being faked.
Usage: python -m det.cli.demo [--work-dir DIR]
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time

from det.cli.main import COMMAND_MODULES


def _steps(work_dir: str) -> list[tuple[str, str, list[str]]]:
    """(command module that must exist, description, argv) in order."""
    det = [sys.executable, "-m", "det.cli"]
    return [
        ("det.cli.config", "resolve the demo preset", [*det, "config", "show", "demo/rtmdet_tiny"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", default="work_dirs/demo")
    args = parser.parse_args()
    start = time.time()
    for module, what, argv in _steps(args.work_dir):
        if module not in COMMAND_MODULES:
            print(f"[demo] skipped: {what} ('{module.rsplit('.', 1)[-1]}' is not built yet)", flush=True)
            continue
        print(f"[demo] {what}: {shlex.join(['det', *argv[3:]])}", flush=True)
        result = subprocess.run(argv)
        if result.returncode != 0:
            sys.exit(result.returncode)
    print(f"[demo] done in {time.time() - start:.0f} s; outputs under {args.work_dir}", flush=True)


if __name__ == "__main__":
    main()
