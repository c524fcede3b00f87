"""Helpers shared by benchmark scripts: timing, peer discovery, the JSON result format.

A benchmark script `benchmarks/NAME.py` runs det beside its peer in the same process, prints a
table and, with `--json OUT`, writes {"title", "rows": [{...}], "notes": [...]} for run.py.
Rows hold at least "case", "det_ms"; with a peer also "peer", "peer_ms", "ratio" (peer/det:
> 1 means det is faster).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def median_ms(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def interleaved_ms(fns: dict[str, Callable[[], object]], repeat: int = 3, warmup: int = 1) -> dict[str, float]:
    """Median wall time (ms) of each named function, the repeats interleaved (a, b, a, b, ...)
    so that a change in machine load hits every function alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: statistics.median(t) for name, t in times.items()}


def peer_site_packages() -> str | None:
    """site-packages of the peer environment (../peers-env by default, or $DET_PEERS_ENV)."""
    env = Path(os.environ.get("DET_PEERS_ENV", REPO.parent / "peers-env"))
    found = sorted(env.glob("venv/lib/python3*/site-packages"))
    return str(found[0]) if found else None


def import_peer(module: str):
    """Import a peer package from the peer environment (appended to sys.path, so det's own
    torch stays first); None with a message when it is missing."""
    site = peer_site_packages()
    if site and site not in sys.path:
        sys.path.append(site)
    try:
        return __import__(module, fromlist=["_"])
    except Exception as exc:  # noqa: BLE001 - any import failure means 'peer absent'
        print(f"[bench] peer '{module}' not available ({type(exc).__name__}: {exc}); "
              f"run ../shared/peers/setup.sh to compare", file=sys.stderr)
        return None


def case_count(doc: str, default: int) -> int:
    """`--cases N` of the metric parity scripts (random cases compared with the peer tool)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--cases", type=int, default=default)
    return parser.parse_args().cases


def import_mmdet_without_ops(*modules: str) -> list | None:
    """MMDetection modules from the peer environment whose code needs no compiled mmcv op (the
    peer's mmcv 'lite' has none: its loader is stubbed); None when MMDetection is absent."""
    loader = import_peer("mmcv.utils.ext_loader")
    if loader is None:
        return None
    loader.load_ext = lambda name, funcs: type("NoOps", (), {})()
    found = [import_peer(m) for m in modules]
    return None if any(m is None for m in found) else found


def arg_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", help="write the result rows to this file")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    return parser


def emit(title: str, rows: list[dict], notes: list[str], json_path: str | None) -> None:
    """Print a plain table and optionally write the JSON result."""
    print(f"\n## {title}")
    if rows:
        keys = list(dict.fromkeys(k for row in rows for k in row))
        print(" | ".join(keys))
        for row in rows:
            print(" | ".join(_fmt(row.get(k)) for k in keys))
    for note in notes:
        print(f"note: {note}")
    if json_path:
        Path(json_path).write_text(json.dumps({"title": title, "rows": rows, "notes": notes}, indent=2))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return "" if value is None else str(value)
