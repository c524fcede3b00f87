"""Real-time detectors on CPU at 640: det's RTMDet-tiny/s and YOLOX-tiny/s beside Ultralytics'
YOLOv8n/s, fp32 and bf16, as forward latency and as work per second (GMAC/s); then `det infer`
end to end against the bare forward at batch 8.

    .venv/bin/python benchmarks/realtime.py [--quick] [--threads 2] [--json out.json]

Both sides run the network forward on one normalised 1x3x640x640 tensor, with conv+BN folded as
each tool's own predictor does (det: `fuse_conv_bn`, as `Detector.from_checkpoint`; Ultralytics:
`DetectionModel.fuse()`, as its AutoBackend), under torch.inference_mode, `--threads` torch threads,
bf16 as CPU autocast. det's forward is `model(x)` (raw head maps, what `det flops` counts);
YOLOv8's also decodes its boxes (no NMS on either side). Random weights: speed does not depend on
what the weights learned. GMAC on both sides come from the same counter, torch.utils.flop_counter
(det's `count_model`, i.e. `det flops`; the peer process runs FlopCounterMode the same way on
YOLOv8): multiply-accumulates of convolutions and matmuls only. Ultralytics runs in its own
process with the peer environment's python ($DET_PEERS_ENV, default ../peers-env), once before and
once after det's models so that a change in load hits both; a missing peer leaves its columns empty
with a message. The load average is printed with the numbers: the machine may be shared.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arg_parser, emit, peer_site_packages  # noqa: E402

# det preset -> (label, the Ultralytics model of the same size class)
MODELS = {
    "rtmdet_tiny": ("RTMDet-tiny", "yolov8n"),
    "yolox/yolox_tiny_8xb8-300e_coco": ("YOLOX-tiny", "yolov8n"),
    "rtmdet_s": ("RTMDet-s", "yolov8s"),
    "yolox/yolox_s_8xb8-300e_coco": ("YOLOX-s", "yolov8s"),
}
SIZE = 640
# Repeats stop after this many seconds per case (at least 3 runs): bf16 without avx512_bf16/AMX is slow.
BUDGET_S = 20.0

PEER_SCRIPT = r"""
import json, os, statistics, sys, time
os.environ.setdefault("YOLO_OFFLINE", "1")
import torch
from torch.utils.flop_counter import FlopCounterMode
from ultralytics.nn.tasks import DetectionModel

names, size, repeat, threads, budget = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
torch.set_num_threads(threads)
out = {}
for name in names:
    torch.manual_seed(0)
    model = DetectionModel(name + ".yaml", verbose=False).eval().fuse(verbose=False)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    row = {"gmac": counter.get_total_flops() / 2e9}
    for prec in ("fp32", "bf16"):
        def run():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
                model(x)
        run()
        times, start = [], time.perf_counter()
        while len(times) < repeat and (len(times) < 3 or time.perf_counter() - start < budget):
            t = time.perf_counter(); run(); times.append((time.perf_counter() - t) * 1000)
        row[prec + "_ms"] = times
    out[name] = row
import ultralytics
print(json.dumps({"version": ultralytics.__version__, "torch": torch.__version__, "models": out}))
"""


def peer_python() -> Path | None:
    site = peer_site_packages()
    return Path(site).parents[2] / "bin" / "python" if site else None


def run_peer(names: list[str], repeat: int, threads: int) -> dict | None:
    """YOLOv8 GMAC and latency lists from the peer environment's python; None (with a message)
    when the peer or Ultralytics is missing or fails."""
    python = peer_python()
    if python is None or not python.exists():
        print("[bench] peer environment not found ($DET_PEERS_ENV or ../peers-env); YOLOv8 columns left empty; "
              "run ../shared/peers/setup.sh to compare", file=sys.stderr)
        return None
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    res = subprocess.run([str(python), "-c", PEER_SCRIPT, ",".join(names), str(SIZE), str(repeat), str(threads),
                          str(BUDGET_S)],
                         capture_output=True, text=True, cwd=tempfile.gettempdir(), env=env, timeout=1800)
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["?"])[-1]
        print(f"[bench] Ultralytics (peer environment) failed: {tail}; YOLOv8 columns left empty", file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def det_model(preset: str) -> tuple[torch.nn.Module, float]:
    """The preset's detector (initial weights, eval, conv+BN folded) and its GMAC at 640 from
    det flops' counter (counted before folding: BN is not a counted op either way)."""
    from det.core.analysis.flops import count_model
    from det.core.config import load_preset
    from det.core.models import build_detector
    from det.core.models.layers import fuse_conv_bn

    torch.manual_seed(0)
    model = build_detector(load_preset(preset)["model"]).eval()
    gmac = count_model(model, (SIZE, SIZE))["macs"] / 1e9
    return fuse_conv_bn(model), gmac


def det_latency(model: torch.nn.Module, repeat: int) -> dict[str, list[float]]:
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    out: dict[str, list[float]] = {}
    for prec in ("fp32", "bf16"):
        def run() -> None:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
                model(x)
        run()
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < repeat and (len(times) < 3 or time.perf_counter() - start < BUDGET_S):
            t = time.perf_counter()
            run()
            times.append((time.perf_counter() - t) * 1000)
        out[f"{prec}_ms"] = times
    return out


def latency_rows(repeat: int, threads: int) -> tuple[list[dict], list[str]]:
    peers = sorted({p for _, p in MODELS.values()})
    before = run_peer(peers, repeat, threads)
    det = {}
    for preset, (label, _) in MODELS.items():
        model, gmac = det_model(preset)
        det[preset] = {"gmac": gmac, **det_latency(model, repeat)}
        del model
    after = run_peer(peers, repeat, threads) if before else None
    notes = []
    if before:
        notes.append(f"peer: ultralytics {before['version']} (torch {before['torch']}) in the peer environment's python, "
                     f"YOLOv8 built from its yaml (no download); its median pools the runs before and after det's")
    rows = []
    for prec in ("fp32", "bf16"):
        for preset, (label, peer) in MODELS.items():
            ms = statistics.median(det[preset][f"{prec}_ms"])
            row = {"case": f"{label} {prec}", "det_ms": ms, "det_gmac": det[preset]["gmac"],
                   "det_gmac_per_s": det[preset]["gmac"] / ms * 1000}
            if before:
                runs = [r["models"][peer][f"{prec}_ms"] for r in (before, after) if r]
                peer_ms = statistics.median([t for r in runs for t in r])
                gmac = before["models"][peer]["gmac"]
                row.update(peer=peer, peer_ms=peer_ms, peer_gmac=gmac, peer_gmac_per_s=gmac / peer_ms * 1000,
                           ratio=(det[preset]["gmac"] / ms) / (gmac / peer_ms))
            rows.append(row)
    return rows, notes


def infer_rows(quick: bool, repeat: int) -> list[dict]:
    """`det infer` (run_inference in process, batch 8, preds JSON, no visualisation) on a folder of
    640x640 JPEGs against model.predict on the same images pre-decoded and pre-batched (infer.py's
    helpers), interleaved; the in-run forward is the model time inside that same det infer run."""
    from infer import bare_seconds, make_checkpoint, make_images, tool_seconds

    from det.core.apis import Detector

    rows = []
    with tempfile.TemporaryDirectory(prefix="det-bench-realtime-") as tmp:
        work = Path(tmp)
        folder = work / "images"
        n = 16 if quick else 48
        paths = make_images(folder, n, (SIZE, SIZE))
        for preset in ("rtmdet_tiny", "yolox/yolox_tiny_8xb8-300e_coco"):
            ckpt = make_checkpoint(preset, work / "model.pt")
            det = Detector.from_checkpoint(ckpt, device="cpu", batch_size=8, score_thr=0.3)  # as infer.py
            bare_seconds(det, paths[:8], 8)  # warm-up
            bare, tool = [], []
            for _ in range(repeat):
                bare.append(bare_seconds(det, paths, 8)[0])
                tool.append(tool_seconds(det, folder, work / "out", 8, vis=False))
            b = statistics.median(bare)
            t = statistics.median(r[0] for r in tool)
            inner = statistics.median(r[2] for r in tool)
            rows.append({"case": f"det infer {MODELS[preset][0]} fp32, batch 8, {n} images 640x640",
                         "det_infer_images_per_s": n / t, "bare_forward_images_per_s": n / b,
                         "infer_vs_bare_pct": 100 * b / t, "infer_vs_in_run_forward_pct": 100 * inner / t})
    return rows


def _cpu_flags() -> list[str]:
    """The bf16-relevant flags of /proc/cpuinfo (empty when absent or unreadable)."""
    try:
        words = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return sorted(words & {"avx512_bf16", "amx_bf16", "amx_tile"})


def main() -> None:
    parser = arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads on both sides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeat = 3 if args.quick else 10
    load = os.getloadavg()
    rows, notes = latency_rows(repeat, args.threads)
    rows += infer_rows(args.quick, 1 if args.quick else 2)
    notes += [
        f"load average before/after: {load[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        f"{args.threads} torch threads on both sides",
        f"latency: median of up to {repeat} forwards (at least 3, fewer once a case has run {BUDGET_S:.0f} s) of one "
        f"1x3x{SIZE}x{SIZE} tensor after 1 warm-up; conv+BN folded on both "
        "sides; bf16 = torch.autocast('cpu', bfloat16); det's forward returns the raw head maps, YOLOv8's also decodes boxes",
        "GMAC: torch.utils.flop_counter on both sides (det flops' counter: convolution and matmul multiply-accumulates); "
        "gmac_per_s = GMAC / latency; ratio = det GMAC/s / YOLOv8 GMAC/s (> 1: det does more work per second)",
        "det infer rows (score_thr 0.3 as benchmarks/infer.py): run_inference (read, test pipeline, batch 8 forward + post-processing, "
        "preds JSON) vs model.predict "
        "on the same images pre-decoded and batched (infer_vs_bare_pct = det infer images/s as % of the bare rate; "
        "infer_vs_in_run_forward_pct uses the forward time measured inside that det infer run)",
    ]
    flags = _cpu_flags()
    notes.append("CPU bf16 support: " + (", ".join(flags) if flags else
                 "none of avx512_bf16/amx_bf16 (bf16 autocast runs emulated, slower than fp32)"))
    emit("Real-time detectors on CPU at 640 (det vs Ultralytics YOLOv8)", rows, notes, args.json)


if __name__ == "__main__":
    main()
