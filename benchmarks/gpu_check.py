"""One command for a machine with a GPU: det's CUDA paths checked and timed (`python benchmarks/gpu_check.py`).

Sections (each reports ok / FAIL / skipped with the reason, nothing stops the others):
  ops       every op on CUDA equal to its CPU kernel (the CPU tests' tolerances) and timed beside
            the torchvision / PyTorch alternative;
  forward   every bundled model family: CUDA features and head outputs equal to CPU within 1e-3
            (fp32, TF32 off);
  train     50 iterations of RTMDet-tiny, Faster R-CNN R50 and DINO R50 at their real input size on
            synthetic shapes, with --amp (fp16 + GradScaler) and without: loss falls, no NaN,
            images/s, peak memory; torchvision's Faster R-CNN train step beside, same GPU and input;
  ddp       `torchrun --nproc-per-node=NGPU` for 20 iterations (NCCL; world size 1 on one GPU);
  infer     `det infer --device cuda` on a folder of 640 px images (images/s), `det serve` when
            the command exists.
Writes gpu_check.json and gpu_check.md (a table for docs/performance.md) into --out
(default work_dirs/gpu_check). Budget: under 8 minutes on one H100/H200-class GPU.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parents[1]
DET = [sys.executable, "-m", "det.cli"]
MODEL_PRESETS = ["rtmdet_tiny.yaml", "retinanet_r50_fpn.yaml", "fcos_r50_fpn.yaml", "faster_rcnn_r50_fpn.yaml",
                 "mask_rcnn_r50_fpn.yaml", "cascade_rcnn_r50_fpn.yaml"]
# (name, preset, input side) for the training section; presets missing in this checkout are skipped.
TRAIN_RUNS = [("rtmdet_tiny", "presets/rtmdet_tiny.yaml", 640),
              ("faster_rcnn_r50", "presets/faster_rcnn.yaml", 800),
              ("dino_r50", "presets/dino/dino-4scale_r50_8xb2-12e_coco.yaml", 800)]


class Report:
    """Collects one row per check: section, name, status, numbers."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, section: str, name: str, status: str, **numbers) -> None:
        row = {"section": section, "name": name, "status": status, **numbers}
        self.rows.append(row)
        extras = ", ".join(f"{k}={_fmt(v)}" for k, v in numbers.items())
        print(f"[{section}] {name}: {status}" + (f" ({extras})" if extras else ""), flush=True)

    def run(self, section: str, name: str, check: Callable[[], dict]) -> None:
        try:
            numbers = check()
        except SkipCheck as exc:
            self.add(section, name, "skipped", reason=str(exc))
            return
        except Exception as exc:  # a failing check is reported, the others still run
            self.add(section, name, "FAIL", error=f"{type(exc).__name__}: {exc}"[:300])
            return
        ok = numbers.pop("ok", True)
        self.add(section, name, "ok" if ok else "FAIL", **numbers)


class SkipCheck(Exception):
    """A check that cannot run here (missing preset, command or peer)."""


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def cuda_time(fn: Callable[[], object], repeats: int = 20, warmup: int = 3) -> float:
    """Median seconds of fn() on the GPU (synchronised)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


# ----------------------------------------------------------------------------------------------- ops
def _random_boxes(n: int, size: float = 800.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 8 + 4
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


def check_nms() -> dict:
    import torchvision
    from det.ops import nms
    boxes, scores = _random_boxes(20000)
    cpu = nms.nms(boxes, scores, 0.5)
    gpu = nms.nms(boxes.cuda(), scores.cuda(), 0.5).cpu()
    t = cuda_time(lambda: torchvision.ops.nms(boxes.cuda(), scores.cuda(), 0.5))
    return {"ok": torch.equal(cpu, gpu), "kept": len(cpu), "ms": t * 1e3, "path": "torchvision (CUDA)"}


def check_soft_nms() -> dict:
    from det.ops import nms
    from det.ops._ext import has_kernel
    if not has_kernel("batched_soft_nms", "CUDA"):
        raise SkipCheck("this build has no CUDA kernels (rebuild with a CUDA toolkit: make setup)")
    boxes, scores = _random_boxes(4000)
    idxs = torch.randint(0, 20, (4000,), generator=torch.Generator().manual_seed(1))
    results = {}
    for method in ("linear", "gaussian"):
        k_cpu, s_cpu = nms.batched_soft_nms(boxes, scores, idxs, 0.3, 0.5, 1e-3, method)
        k_gpu, s_gpu = nms.batched_soft_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.3, 0.5, 1e-3, method)
        same = torch.equal(k_cpu, k_gpu.cpu()) and torch.allclose(s_cpu, s_gpu.cpu(), atol=1e-6)
        results[method] = same
    t_gpu = cuda_time(lambda: nms.batched_soft_nms(boxes.cuda(), scores.cuda(), idxs.cuda()))
    t0 = time.perf_counter()
    for _ in range(5):
        nms.batched_soft_nms(boxes, scores, idxs)
    t_cpu = (time.perf_counter() - t0) / 5
    return {"ok": all(results.values()), "ms": t_gpu * 1e3, "cpu_kernel_ms": t_cpu * 1e3,
            "speedup_vs_cpu": t_cpu / t_gpu}


def check_focal_loss() -> dict:
    import torchvision
    from det.ops.focal_loss import sigmoid_focal_loss
    from det.ops._ext import has_kernel
    if not has_kernel("sigmoid_focal_loss", "CUDA"):
        raise SkipCheck("this build has no CUDA kernels (rebuild with a CUDA toolkit: make setup)")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200000, 80, generator=g)
    t = (torch.rand(200000, 80, generator=g) > 0.99).float()
    xc = x.cuda().requires_grad_()
    loss = sigmoid_focal_loss(xc, t.cuda(), reduction="sum")
    loss.backward()
    xr = x.clone().requires_grad_()
    ref = sigmoid_focal_loss(xr, t, reduction="sum")
    ref.backward()
    ok = math.isclose(loss.item(), ref.item(), rel_tol=1e-5) and torch.allclose(xc.grad.cpu(), xr.grad, atol=1e-6)

    def ours():
        xc.grad = None
        sigmoid_focal_loss(xc, t.cuda(), reduction="sum").backward()

    def theirs():
        xc.grad = None
        torchvision.ops.sigmoid_focal_loss(xc, t.cuda(), reduction="sum").backward()
    t_ours, t_tv = cuda_time(ours), cuda_time(theirs)
    return {"ok": ok, "ms": t_ours * 1e3, "torchvision_ms": t_tv * 1e3, "ratio": t_tv / t_ours}


def _deform_inputs(device: str, queries: int | None = None):
    """DINO's shapes: batch 2, 4 levels of an 800x1333 input (strides 8-64), 8 heads x 32 channels, 4 points."""
    shapes = torch.tensor([[100, 167], [50, 84], [25, 42], [13, 21]])
    starts = torch.cat([torch.zeros(1, dtype=torch.long), (shapes[:, 0] * shapes[:, 1]).cumsum(0)[:-1]])
    n = int((shapes[:, 0] * shapes[:, 1]).sum())
    q = queries or n
    g = torch.Generator().manual_seed(0)
    value = torch.randn(2, n, 8, 32, generator=g)
    loc = torch.rand(2, q, 8, 4, 4, 2, generator=g) * 1.1 - 0.05
    attn = torch.rand(2, q, 8, 4, 4, generator=g).softmax(-1)
    return [x.to(device) for x in (value, shapes, starts, loc, attn)]


def check_ms_deform_attn() -> dict:
    try:
        from det.ops import ms_deform_attn
    except ImportError as exc:
        raise SkipCheck(f"det.ops.ms_deform_attn not in this checkout ({exc})") from None
    from det.ops._ext import has_kernel
    if not has_kernel("ms_deform_attn", "CUDA"):
        raise SkipCheck("this build has no CUDA kernels (rebuild with a CUDA toolkit: make setup)")
    value, shapes, starts, loc, attn = _deform_inputs("cpu", queries=900)
    args_cpu = [value.requires_grad_(), shapes, starts, loc.requires_grad_(), attn.requires_grad_()]
    out_cpu = _call_deform(args_cpu)
    out_cpu.sum().backward()
    args_gpu = [a.detach().cuda().requires_grad_() if a.is_floating_point() else a.cuda() for a in args_cpu]
    out_gpu = _call_deform(args_gpu)
    out_gpu.sum().backward()
    ok = torch.allclose(out_cpu, out_gpu.detach().cpu(), atol=1e-5)
    for a, b in zip(args_cpu, args_gpu):
        if a.is_floating_point():
            ok = ok and torch.allclose(a.grad, b.grad.cpu(), atol=1e-4, rtol=1e-4)
    full = [a.cuda() for a in _deform_inputs("cpu")]
    t_enc = cuda_time(lambda: _call_deform(full))
    t_ref = cuda_time(lambda: _deform_reference(full))
    return {"ok": ok, "encoder_ms": t_enc * 1e3, "grid_sample_ref_ms": t_ref * 1e3, "ratio": t_ref / t_enc}


def _call_deform(args):
    from det.ops import ms_deform_attn
    fn = ms_deform_attn if callable(ms_deform_attn) else ms_deform_attn.ms_deform_attn
    return fn(*args)


def _deform_reference(args):
    """mmcv's pure-PyTorch formulation (grid_sample per level), the alternative without a kernel."""
    import torch.nn.functional as F
    value, shapes, starts, loc, attn = args
    b, _, heads, c = value.shape
    _, q, _, levels, points, _ = loc.shape
    grids = 2 * loc - 1
    outs = []
    for lvl in range(levels):
        h, w = int(shapes[lvl, 0]), int(shapes[lvl, 1])
        s = int(starts[lvl])
        v = value[:, s:s + h * w].flatten(2).transpose(1, 2).reshape(b * heads, c, h, w)
        grid = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        outs.append(F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    weights = attn.transpose(1, 2).reshape(b * heads, 1, q, levels * points)
    out = (torch.stack(outs, -2).flatten(-2) * weights).sum(-1)
    return out.view(b, heads * c, q).transpose(1, 2)


def check_roi_align() -> dict:
    import torchvision
    from det.ops.roi_align import roi_align
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 256, 100, 168, generator=g)
    boxes, _ = _random_boxes(1024, 800)
    rois = torch.cat([torch.randint(0, 2, (1024, 1), generator=g).float(), boxes], 1)
    cpu = roi_align(feats, rois, (7, 7), 0.125, 2, True)
    gpu = roi_align(feats.cuda(), rois.cuda(), (7, 7), 0.125, 2, True).cpu()
    t = cuda_time(lambda: torchvision.ops.roi_align(feats.cuda(), rois.cuda(), (7, 7), 0.125, 2, True))
    return {"ok": torch.allclose(cpu, gpu, atol=1e-4), "ms": t * 1e3, "path": "torchvision (CUDA)"}


# ------------------------------------------------------------------------------------------- forward
def check_forward(preset: str) -> dict:
    from det.core.config import load_preset
    from det.core.models import build_detector
    path = REPO / "presets" / "_base_" / "models" / preset
    if not path.is_file():
        raise SkipCheck(f"{path.relative_to(REPO)} not in this checkout")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = build_detector(load_preset(path)["model"]).eval()
    x = torch.randn(1, 3, 320, 320, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model.extract_feat(x)
        model_gpu = model.cuda()
        out = model_gpu.extract_feat(x.cuda())
    worst = max(float((a - b.cpu()).abs().max() / a.abs().max().clamp(min=1)) for a, b in zip(ref, out))
    return {"ok": worst <= 1e-3, "max_rel_diff": worst}


# --------------------------------------------------------------------------------------------- train
def make_shapes(root: Path, size: int, num_train: int) -> Path:
    data = root / f"shapes_{size}"
    if not (data / "instances_train.json").is_file():
        subprocess.run([*DET, "synth", "shapes", str(data), "--num-train", str(num_train), "--num-val", "8",
                        "--size", str(size), "--min-object-size", str(size // 16), "--force"], check=True,
                       capture_output=True, text=True)
    return data


def data_overrides(data: Path, size: int, batch: int, iters: int) -> list[str]:
    sets = []
    for split, ann, prefix in (("train", "instances_train.json", "train/"), ("val", "instances_val.json", "val/"),
                               ("test", "instances_val.json", "val/")):
        sets += [f"data.{split}.dataset.data_root={data}/", f"data.{split}.dataset.ann_file={ann}",
                 f"data.{split}.dataset.data_prefix={prefix}"]
    return sets + [f"data.train.batch_size={batch}", "data.train.num_workers=4", "train.max_epochs=1",
                   f"train.log_interval={max(1, iters // 10)}", "train.val_interval=100"]


def read_losses(work_dir: Path) -> list[dict]:
    log = work_dir / "log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []


def check_train(name: str, preset: str, size: int, amp: bool, root: Path, iters: int = 50, batch: int = 2) -> dict:
    if not (REPO / preset).is_file():
        raise SkipCheck(f"{preset} not in this checkout")
    data = make_shapes(root, size, iters * batch)
    work = root / f"train_{name}_{'amp' if amp else 'fp32'}"
    cmd = [*DET, "train", preset, "--work-dir", str(work), "--force", "--device", "cuda",
           "--amp" if amp else "--no-amp", "--set", *data_overrides(data, size, batch, iters)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    recs = [r for r in read_losses(work) if r.get("mode") == "train" and "loss" in r]
    if len(recs) < 2:
        raise RuntimeError(f"{len(recs)} training log records in {work}/log.jsonl")
    losses = [r["loss"] for r in recs]
    times = [r["time"] for r in recs[1:] if "time" in r]
    per_iter = sum(times) / len(times) if times else wall / iters
    finite = all(math.isfinite(v) for v in losses)
    return {"ok": finite and losses[-1] < losses[0], "loss_first": losses[0], "loss_last": losses[-1],
            "img_per_s": batch / per_iter, "peak_mem_mb": max(r.get("memory", 0) for r in recs)}


def check_torchvision_faster_rcnn(iters: int = 20, batch: int = 2) -> dict:
    from torchvision.models.detection import fasterrcnn_resnet50_fpn
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=7).cuda().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 800, 1066, generator=g).cuda() for _ in range(batch)]
    targets = [{"boxes": _random_boxes(8, 700, seed=i)[0].cuda(), "labels": torch.randint(1, 7, (8,)).cuda()}
               for i in range(batch)]

    def step():
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    t = cuda_time(step, repeats=iters, warmup=3)
    return {"img_per_s": batch / t, "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20}


def check_ddp(root: Path, iters: int = 20) -> dict:
    preset = "presets/rtmdet_tiny.yaml"
    data = make_shapes(root, 640, iters * 2 * torch.cuda.device_count())
    work = root / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={torch.cuda.device_count()}",
           "-m", "det.cli", "train", preset, "--work-dir", str(work), "--force", "--device", "cuda",
           "--set", *data_overrides(data, 640, 2, iters)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1])
    recs = [r for r in read_losses(work) if r.get("mode") == "train" and "loss" in r]
    return {"ok": bool(recs) and all(math.isfinite(r["loss"]) for r in recs), "world_size": torch.cuda.device_count(),
            "records": len(recs)}


# --------------------------------------------------------------------------------------------- infer
def check_infer(root: Path) -> dict:
    ckpt = root / "train_rtmdet_tiny_fp32" / "last.pt"
    if not ckpt.is_file():
        raise SkipCheck("no RTMDet-tiny checkpoint from the train section")
    images = make_shapes(root, 640, 64) / "train"
    cmd = [*DET, "infer", str(images), "--weights", str(ckpt), "--device", "cuda", "--format", "jsonl"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1])
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return {"ok": len(lines) == 64, "images": len(lines), "img_per_s_incl_startup": len(lines) / wall}


def check_serve(root: Path) -> dict:
    help_proc = subprocess.run([*DET, "serve", "--help"], capture_output=True, text=True)
    if help_proc.returncode != 0:
        raise SkipCheck("`det serve` is not in this checkout")
    ckpt = root / "train_rtmdet_tiny_fp32" / "last.pt"
    if not ckpt.is_file():
        raise SkipCheck("no RTMDet-tiny checkpoint from the train section")
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen([*DET, "serve", str(ckpt), "--port", str(port), "--device", "cuda"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        images = sorted((make_shapes(root, 640, 64) / "train").glob("*.jpg"))[:32] or \
            sorted((make_shapes(root, 640, 64) / "train").glob("*.png"))[:32]
        payloads = [p.read_bytes() for p in images]

        def post(i: int) -> float:
            t0 = time.perf_counter()
            req = urllib.request.Request(url + "/v1/detect", data=payloads[i % len(payloads)], method="POST")
            urllib.request.urlopen(req, timeout=60).read()
            return time.perf_counter() - t0
        t0 = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            lat = sorted(pool.map(post, range(16 * 10)))
        wall = time.perf_counter() - t0
        return {"img_per_s": len(lat) / wall, "p50_ms": lat[len(lat) // 2] * 1e3, "p95_ms": lat[int(len(lat) * 0.95)] * 1e3}
    finally:
        server.terminate()
        server.wait(timeout=30)


# ---------------------------------------------------------------------------------------------- main
def write_outputs(report: Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "cuda": torch.version.cuda}
    (out / "gpu_check.json").write_text(json.dumps({"meta": meta, "rows": report.rows}, indent=1, allow_nan=False,
                                                   default=str))
    lines = [f"GPU check on {meta['gpu']} ({meta['date']}, torch {meta['torch']}, CUDA {meta['cuda']})", "",
             "| section | check | status | numbers |", "|---|---|---|---|"]
    for r in report.rows:
        nums = ", ".join(f"{k} {_fmt(v)}" for k, v in r.items() if k not in ("section", "name", "status"))
        lines.append(f"| {r['section']} | {r['name']} | {r['status']} | {nums} |")
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "work_dirs" / "gpu_check")
    parser.add_argument("--sections", default="ops,forward,train,ddp,infer",
                        help="comma-separated subset of ops,forward,train,ddp,infer")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    sections = set(args.sections.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    report = Report()
    if "ops" in sections:
        for name, check in (("nms", check_nms), ("soft_nms", check_soft_nms), ("sigmoid_focal_loss", check_focal_loss),
                            ("roi_align", check_roi_align), ("ms_deform_attn", check_ms_deform_attn)):
            report.run("ops", name, check)
    if "forward" in sections:
        for preset in MODEL_PRESETS:
            report.run("forward", preset.removesuffix(".yaml"), lambda p=preset: check_forward(p))
    if "train" in sections:
        for name, preset, size in TRAIN_RUNS:
            for amp in (False, True):
                report.run("train", f"{name} {'fp16+scaler' if amp else 'fp32'}",
                           lambda n=name, p=preset, s=size, a=amp: check_train(n, p, s, a, args.out))
        report.run("train", "torchvision faster_rcnn_r50 (reference)", check_torchvision_faster_rcnn)
    if "ddp" in sections:
        report.run("ddp", "torchrun rtmdet_tiny", lambda: check_ddp(args.out))
    if "infer" in sections:
        report.run("infer", "det infer rtmdet_tiny", lambda: check_infer(args.out))
        report.run("infer", "det serve rtmdet_tiny", lambda: check_serve(args.out))
    write_outputs(report, args.out)
    return 1 if any(r["status"] == "FAIL" for r in report.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
