"""Model speed: forward (inference incl. post-processing) latency and one training step of
det's RTMDet-tiny at 640 and RetinaNet-R50-FPN at 800x1333, beside torchvision's RetinaNet and
FCOS (random init: weights=None, weights_backbone=None) in the same process and threads; and
det's bf16 autocast speed-up on this CPU. MMDetection's models need mmcv's compiled ops
(mmcv._ext), which the peer environment lacks, so they are skipped when unavailable.

Usage: python benchmarks/models.py [--quick] [--threads N] [--json OUT]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, arg_parser, emit, import_peer, median_ms  # noqa: E402


def det_model(preset: str, num_classes: int = 80):
    from det.core.config import load_preset
    from det.core.models import build_detector

    cfg = load_preset(REPO / "presets" / "_base_" / "models" / preset)["model"]
    return build_detector(cfg)


def det_inputs(b: int, h: int, w: int):
    from det.core.structures import DetSample, Instances

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (b, 3, h, w), dtype=torch.uint8, generator=g)
    boxes = torch.tensor([[40.0, 60, 200, 220], [300, 100, 520, 400], [100, 300, 180, 380]])
    boxes[:, 0::2] *= w / 640
    boxes[:, 1::2] *= h / 640
    samples = [DetSample(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w),
                         gt=Instances(bboxes=boxes.clone(), labels=torch.tensor([1, 5, 7]))) for _ in range(b)]
    return x, samples, boxes


def det_fwd(model, x, samples, bf16: bool = False):
    model.eval()

    def run():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model.predict(x, samples)
    return run


def det_train(model, x, samples, bf16: bool = False):
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            losses = model.loss(x, samples)
        loss = sum(v for k, v in losses.items() if k.startswith("loss"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return run


def tv_pair(name: str, b: int, h: int, w: int, boxes: torch.Tensor):
    import torchvision.models.detection as tvd

    ctor = getattr(tvd, name)
    model = ctor(weights=None, weights_backbone=None, num_classes=81, min_size=min(h, w), max_size=max(h, w))
    imgs = [torch.rand(3, h, w, generator=torch.Generator().manual_seed(i)) for i in range(b)]
    targets = [{"boxes": boxes.clone(), "labels": torch.tensor([1, 5, 7])} for _ in range(b)]
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

    def fwd():
        model.eval()
        with torch.inference_mode():
            model(imgs)

    def train():
        model.train()
        loss = sum(model(imgs, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return fwd, train


def main() -> None:
    parser = arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    rep = 2 if args.quick else 3
    rtm_size = 320 if args.quick else 640
    ret_h, ret_w = (400, 667) if args.quick else (800, 1333)
    rows, notes = [], [f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1, fp32 unless noted"]

    # RTMDet-tiny
    rtm = det_model("rtmdet_tiny_coco.yaml")
    x, samples, _ = det_inputs(1, rtm_size, rtm_size)
    fwd32 = median_ms(det_fwd(rtm, x, samples), rep)
    fwd16 = median_ms(det_fwd(rtm, x, samples, bf16=True), rep)
    tr32 = median_ms(det_train(rtm, x, samples), rep)
    tr16 = median_ms(det_train(rtm, x, samples, bf16=True), rep)
    rows.append({"case": f"RTMDet-tiny forward {rtm_size}", "det_ms": fwd32, "det_bf16_ms": fwd16,
                 "bf16_speedup": fwd32 / fwd16})
    rows.append({"case": f"RTMDet-tiny train step {rtm_size}", "det_ms": tr32, "det_bf16_ms": tr16,
                 "bf16_speedup": tr32 / tr16})
    del rtm

    # RetinaNet-R50-FPN and FCOS-R50-FPN, each beside torchvision's same architecture
    have_tv = import_peer("torchvision") is not None
    for preset, label, tv_name, with_bf16 in (("retinanet_r50_fpn.yaml", "RetinaNet-R50-FPN", "retinanet_resnet50_fpn", True),
                                              ("fcos_r50_fpn.yaml", "FCOS-R50-FPN", "fcos_resnet50_fpn", False)):
        model = det_model(preset)
        x, samples, boxes = det_inputs(1, ret_h, ret_w)
        peer = tv_pair(tv_name, 1, ret_h, ret_w, boxes) if have_tv else None
        for i, (kind, make) in enumerate((("forward", det_fwd), ("train step", det_train))):
            det32 = median_ms(make(model, x, samples), rep)
            row = {"case": f"{label} {kind} {ret_h}x{ret_w}", "det_ms": det32}
            if peer is not None:
                peer_ms = median_ms(peer[i], rep)
                row.update({"peer": f"torchvision {label}", "peer_ms": peer_ms, "ratio": peer_ms / det32})
            if with_bf16:
                det16 = median_ms(make(model, x, samples, bf16=True), rep)
                row.update({"det_bf16_ms": det16, "bf16_speedup": det32 / det16})
            rows.append(row)
        del model, peer
    mmdet = import_peer("mmdet.models")
    if mmdet is None:
        notes.append("MMDetection models skipped: the peer mmcv has no compiled ops (mmcv._ext)")
    notes.append("ratio = peer_ms / det_ms (> 1: det faster); torchvision's models include their own "
                 "resize/normalise transform and post-processing, det's include the data preprocessor "
                 "and post-processing")
    emit("Models: forward and train step (CPU)", rows, notes, args.json)


if __name__ == "__main__":
    main()
