"""`det infer` end to end vs the model's bare forward on the same tensors, batch 1 and 4.

The bare forward is `model.predict` (under torch.inference_mode) on inputs that were decoded,
run through the test pipeline and padded beforehand; `det infer` (run_inference, in process)
does all of that itself plus writing preds/<name>.json. Overhead = det / bare - 1 (target
<= 15 %). A `det infer` subprocess row adds interpreter start-up and checkpoint loading.
Usage: python benchmarks/infer.py [--quick] [--weights CKPT] [--preset demo/rtmdet_tiny]
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arg_parser, emit  # noqa: E402

from det.core.apis import Detector  # noqa: E402
from det.core.fileio import atomic_torch_save  # noqa: E402
from det.core.inference.inputs import discover  # noqa: E402
from det.core.inference.reader import imread  # noqa: E402
from det.core.inference.runner import InferOptions, run_inference  # noqa: E402


def make_checkpoint(preset: str, path: Path) -> Path:
    """A checkpoint of the preset's model with its initial weights (speed does not depend on
    training); same file layout as det train writes."""
    from det.core.config import load_preset
    from det.core.models import build_detector

    cfg = load_preset(preset)
    torch.manual_seed(0)
    model = build_detector(cfg["model"])
    classes = (cfg.get("data") or {}).get("classes") or [f"class{i}" for i in range(80)]
    atomic_torch_save(path, {"state_dict": model.state_dict(), "preset": cfg, "meta": {"classes": list(classes)}})
    return path


def make_images(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
        for _ in range(4):
            x0, y0 = rng.integers(0, size[0] - 40), rng.integers(0, size[1] - 40)
            img[y0:y0 + rng.integers(15, 40), x0:x0 + rng.integers(15, 40)] = rng.integers(80, 255, 3)
        p = folder / f"img{i:04d}.jpg"
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths


def bare_seconds(det: Detector, paths: list[Path], batch: int) -> tuple[float, float]:
    """(wall, process CPU) seconds of model.predict alone on pre-made batches."""
    prepared = [det.preprocess(imread(str(p)), str(p)) for p in paths]
    batches = [det.collate(prepared[i:i + batch]) for i in range(0, len(prepared), batch)]
    start, cpu = time.perf_counter(), time.process_time()
    for inputs, samples in batches:
        det.forward(inputs, samples)
    return time.perf_counter() - start, time.process_time() - cpu


def tool_seconds(det: Detector, folder: Path, out: Path, batch: int, vis: bool) -> tuple[float, float, float]:
    """(wall, process CPU, wall spent inside model.predict) seconds of run_inference: read,
    pipeline, forward, write. The third number is the bare forward on the very tensors of this
    run, timed in the same run, so machine-load drift between runs does not enter the ratio."""
    inner = [0.0]
    forward = det.forward

    def timed(inputs, samples):
        t0 = time.perf_counter()
        try:
            return forward(inputs, samples)
        finally:
            inner[0] += time.perf_counter() - t0

    det.forward = timed  # type: ignore[method-assign]
    try:
        start, cpu = time.perf_counter(), time.process_time()
        run_inference(det, discover([str(folder)]), InferOptions(out_dir=out, batch_size=batch, vis=vis, force=True))
        return time.perf_counter() - start, time.process_time() - cpu, inner[0]
    finally:
        del det.forward


def main() -> None:
    parser = arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--weights", help="checkpoint to use (default: the preset's model, initial weights)")
    parser.add_argument("--preset", default="demo/rtmdet_tiny")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 192), metavar=("W", "H"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    n = 20 if args.quick else args.images
    repeat = 1 if args.quick else args.repeat
    tmp = Path(tempfile.mkdtemp(prefix="det-bench-infer-"))
    ckpt = Path(args.weights) if args.weights else make_checkpoint(args.preset, tmp / "model.pt")
    folder = tmp / "images"
    paths = make_images(folder, n, tuple(args.size))
    rows, notes = [], []
    ips = {}
    for batch in (1, 4):
        det = Detector.from_checkpoint(ckpt, device=args.device, batch_size=batch, score_thr=0.3)
        bare_seconds(det, paths[: 2 * batch], batch)  # warm-up
        runs: dict[str, list[tuple[float, ...]]] = {"bare": [], "tool": [], "vis": []}
        for k in range(repeat):  # interleaved so changing machine load hits both alike
            runs["bare"].append(bare_seconds(det, paths, batch))
            runs["tool"].append(tool_seconds(det, folder, tmp / "out", batch, vis=False))
            if k == 0 and (batch == 4 or args.quick):
                runs["vis"].append(tool_seconds(det, folder, tmp / "out", batch, vis=True))
        med = {key: tuple(statistics.median(r[i] for r in v) for i in range(len(v[0]))) for key, v in runs.items() if v}
        (b, bc), (t, tc, ti) = med["bare"], med["tool"]
        ips[batch] = n / t
        rows.append({"case": f"batch {batch}, preds JSON", "images": n, "bare_forward_s": b, "det_infer_s": t,
                     "overhead_pct": 100 * (t / b - 1), "cpu_overhead_pct": 100 * (tc / bc - 1),
                     "in_run_forward_s": ti, "in_run_overhead_pct": 100 * (t / ti - 1),
                     "det_images_per_s": n / t, "bare_images_per_s": n / b})
        if "vis" in med:
            tv, tvc, tvi = med["vis"]
            rows.append({"case": f"batch {batch}, preds JSON + vis", "images": n, "bare_forward_s": b, "det_infer_s": tv,
                         "overhead_pct": 100 * (tv / b - 1), "cpu_overhead_pct": 100 * (tvc / bc - 1),
                         "in_run_forward_s": tvi, "in_run_overhead_pct": 100 * (tv / tvi - 1),
                         "det_images_per_s": n / tv, "bare_images_per_s": n / b})
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "det.cli", "infer", str(folder), "--weights", str(ckpt), "--device",
                           args.device, "--out-dir", str(tmp / "cli"), "--no-vis", "--batch-size", "4"],
                          capture_output=True, text=True)
    cli_s = time.perf_counter() - start
    if proc.returncode == 0:
        rows.append({"case": "det infer subprocess, batch 4 (incl. start-up + checkpoint load)", "images": n,
                     "det_infer_s": cli_s, "det_images_per_s": n / cli_s})
    else:
        notes.append(f"det infer subprocess failed: {proc.stderr.strip().splitlines()[-1:]}")
    notes.append(f"batch 4 vs batch 1 det infer throughput: {ips[4] / ips[1]:.2f}x ({ips[4]:.1f} vs {ips[1]:.1f} images/s)")
    notes.append(f"{n} JPEG images {args.size[0]}x{args.size[1]}, preset {args.preset if not args.weights else args.weights}, device {args.device}, "
                 f"torch threads {torch.get_num_threads()}, median of {repeat}; overhead_pct from wall time, "
                 "cpu_overhead_pct from process CPU time; in_run_overhead_pct = det infer wall / wall inside model.predict "
                 "during that same run (immune to load drift between runs)")
    notes.append("no peer row: MMDetection's DetInferencer needs mmcv.ops, not built in the peer env; the bare forward is the reference")
    emit("det infer vs bare model forward", rows, notes, args.json)


if __name__ == "__main__":
    main()
