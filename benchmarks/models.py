"""Model speed: forward (inference incl. post-processing) latency and one training step of
det's RTMDet-tiny at 640 and RetinaNet-R50-FPN at 800x1333 (and FCOS-R50-FPN), beside
torchvision's RetinaNet and FCOS in the same process and threads, and det's bf16 autocast
(`--amp`) speed-up on this CPU. torchvision's models are built in the configuration its
builders use for fine-tuning (FrozenBatchNorm2d, conv1 + layer1 frozen: trainable_backbone_layers
3), which matches det's R50 presets (frozen_stages 1, norm_eval); random init. det's forward
runs with BatchNorm folded into the convolutions (det.core.models.layers.fuse_conv_bn, as
`det test` / `det infer` do); the unfused time is reported beside it. MMDetection's models need
mmcv's compiled ops (mmcv._ext), which the peer environment's mmcv-lite lacks: skipped with a note.

Usage: python benchmarks/models.py [--quick] [--threads N] [--only rtmdet,retinanet,fcos] [--json OUT]
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, arg_parser, emit, import_peer, interleaved_ms  # noqa: E402


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
    def run():
        model.eval()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model.predict(x, samples)
    return run


def det_train(model, x, samples, bf16: bool = False):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

    def run():
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            losses = model.loss(x, samples)
        loss = sum(v for k, v in losses.items() if k.startswith("loss"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return run


def tv_model(kind: str, h: int, w: int, num_classes: int = 81):
    """torchvision's RetinaNet / FCOS / Faster R-CNN R50-FPN as its builders make them with
    ImageNet weights (FrozenBatchNorm2d, trainable_backbone_layers=3), here randomly initialised."""
    import torchvision.models.detection as tvd
    from torchvision.models import resnet50
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.manual_seed(0)
    backbone = resnet50(norm_layer=FrozenBatchNorm2d)
    size = {"min_size": min(h, w), "max_size": max(h, w)}
    if kind == "faster_rcnn":
        return tvd.FasterRCNN(_resnet_fpn_extractor(backbone, 3), num_classes, rpn_post_nms_top_n_train=2000, **size)
    body = _resnet_fpn_extractor(backbone, 3, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
    return (tvd.RetinaNet if kind == "retinanet" else tvd.FCOS)(body, num_classes, **size)


def tv_pair(kind: str, b: int, h: int, w: int, boxes: torch.Tensor):
    model = tv_model(kind, h, w)
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


def fused_copy(model):
    from det.core.models.layers import fuse_conv_bn

    return fuse_conv_bn(copy.deepcopy(model).eval())


def bench_model(preset: str, label: str, size: tuple[int, int], tv_kind: str | None, with_bf16: bool,
                rep: int) -> list[dict]:
    h, w = size
    model = det_model(preset)
    fused = fused_copy(model)
    x, samples, boxes = det_inputs(1, h, w)
    peer = tv_pair(tv_kind, 1, h, w, boxes) if tv_kind else None
    size_txt = f"{h}" if h == w else f"{h}x{w}"
    rows = []
    fwd = {"det": det_fwd(fused, x, samples), "det_unfused": det_fwd(model, x, samples)}
    train = {"det": det_train(model, x, samples)}
    if with_bf16:
        fwd["det_bf16"] = det_fwd(fused, x, samples, bf16=True)
        train["det_bf16"] = det_train(model, x, samples, bf16=True)
    if peer is not None:
        fwd["peer"], train["peer"] = peer
    for kind, fns in (("forward", fwd), ("train step", train)):
        t = interleaved_ms(fns, rep)
        row = {"case": f"{label} {kind} {size_txt}", "det_ms": t["det"]}
        if "det_unfused" in t:
            row["det_unfused_ms"] = t["det_unfused"]
        if peer is not None:
            row.update({"peer": f"torchvision {label}", "peer_ms": t["peer"], "ratio": t["peer"] / t["det"]})
        if with_bf16:
            row.update({"det_bf16_ms": t["det_bf16"], "bf16_speedup": t["det"] / t["det_bf16"]})
        rows.append(row)
        print(f"[bench] {row}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--only", default="rtmdet,retinanet,fcos", help="comma list of rtmdet, retinanet, fcos")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    rep = 2 if args.quick else 3
    rtm_size = 320 if args.quick else 640
    r50 = (400, 667) if args.quick else (800, 1333)
    only = set(args.only.split(","))
    have_tv = import_peer("torchvision") is not None
    rows, notes = [], [f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1, fp32 unless noted; "
                       f"median of {rep} interleaved runs after 1 warm-up"]
    if "rtmdet" in only:
        rows += bench_model("rtmdet_tiny_coco.yaml", "RTMDet-tiny", (rtm_size, rtm_size), None, True, rep)
    if "retinanet" in only:
        rows += bench_model("retinanet_r50_fpn.yaml", "RetinaNet-R50-FPN", r50, "retinanet" if have_tv else None,
                            True, rep)
    if "fcos" in only:
        rows += bench_model("fcos_r50_fpn.yaml", "FCOS-R50-FPN", r50, "fcos" if have_tv else None, False, rep)
    if import_peer("mmdet.models") is None:
        notes.append("MMDetection models skipped: importing mmdet.models needs mmcv's compiled ops (mmcv._ext); "
                     "the peer environment has mmcv-lite")
    notes.append("ratio = peer_ms / det_ms (> 1: det faster); det_ms forward = BatchNorm folded into the convs "
                 "(fuse_conv_bn, as det test/infer run), det_unfused_ms = the model as trained; torchvision's "
                 "models include their resize/normalise transform and post-processing, det's the data "
                 "preprocessor and post-processing")
    notes.append("torchvision: FrozenBatchNorm2d, trainable_backbone_layers=3, P6 from P5 (LastLevelP6P7(256, 256)); "
                 "det RetinaNet follows MMDetection (P6 from C5: add_extra_convs on_input, BN affine trainable in "
                 "layer2-4), det FCOS takes P6 from P5 like torchvision")
    emit("Models: forward and train step (CPU)", rows, notes, args.json)


if __name__ == "__main__":
    main()
