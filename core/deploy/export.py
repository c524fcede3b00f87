"""`det export` as a function: checkpoint -> exported model + FILE.det.json, verified.

The model is traced to a temporary file beside the output, verified in its runtime against
PyTorch, and only then renamed into place with its sidecar: a failed export or verification
leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from det.core.deploy.graph import ExportedDense, output_groups
from det.core.deploy.sidecar import build_sidecar, sidecar_path, write_sidecar
from det.core.errors import DetError
from det.core.fileio import ensure_new

GRAPH_OPSET = 16  # ONNX RoiAlign with aligned RoIs (two-stage) and GridSample (deformable attention)
FORMATS = {"onnx": ".onnx", "openvino": ".xml", "torchscript": ".torchscript"}


class VerifyError(DetError):
    """The exported model disagrees with PyTorch beyond the tolerances (exit 1)."""

    exit_code = 1


@dataclass
class ExportOptions:
    format: str = "onnx"
    out: Path | None = None
    imgsz: tuple[int, int] | None = None
    dynamic: bool = False
    batch: int = 1
    opset: int = 17
    nms: bool = True
    verify: bool = True
    force: bool = False


def is_two_stage(model: torch.nn.Module) -> bool:
    from det.core.models.detectors.two_stage import TwoStageDetector

    return isinstance(model, TwoStageDetector)


def is_detr(model: torch.nn.Module) -> bool:
    from det.core.models.detectors.detr import DetectionTransformer

    return isinstance(model, DetectionTransformer)


def check_family(model: torch.nn.Module, opts: ExportOptions) -> None:
    """Dense, two-stage and DETR-family detectors export; say why for what cannot."""
    _check_soft_nms(model)
    from det.core.models.detectors.single_stage import SingleStageDetector

    if is_two_stage(model):
        if not opts.nms:
            raise DetError("--no-nms: two-stage detectors export with post-processing in the graph only "
                           "(the RPN's proposals feed the RoI head); drop --no-nms")
        if opts.format != "torchscript" and opts.opset < GRAPH_OPSET:
            raise DetError(f"--opset: two-stage detectors need opset >= 16 (ONNX RoiAlign with aligned RoIs), got {opts.opset}")
        return
    if is_detr(model):
        if not opts.nms:
            raise DetError("--no-nms: DETR-family exports always include their top-k post-processing (there is "
                           "no NMS to leave out); drop --no-nms")
        deformable = type(model).__name__ != "DETR"
        if deformable and opts.format != "torchscript" and opts.opset < GRAPH_OPSET:
            raise DetError(f"--opset: {type(model).__name__} needs opset >= 16 (multi-scale deformable attention "
                           f"exports as ONNX GridSample), got {opts.opset}")
        return
    if type(getattr(model, "bbox_head", None)).__name__ == "RTMDetInsSepBNHead" and not opts.nms:
        raise DetError("--no-nms: RTMDet-Ins exports with post-processing in the graph only (the kept instances' "
                       "dynamic mask kernels run in it); drop --no-nms")
    if not isinstance(model, SingleStageDetector) or not hasattr(model, "bbox_head"):  # SOLOv2: mask_head
        raise DetError(f"model.type: {type(model).__name__} cannot be exported: det has no export path for its "
                       "head; RTMDet, RTMDet-Ins, RetinaNet, FCOS, YOLOX, Faster / Mask / Cascade R-CNN, DETR, Deformable DETR and "
                       "DINO export")


def _check_soft_nms(model: torch.nn.Module) -> None:
    """Soft-NMS rescores boxes sequentially: ONNX has no operator for it and a hard-NMS graph would
    silently change the detections."""
    heads = [(h, p) for h, p in ((getattr(model, "bbox_head", None), "model.test_cfg.nms"),
                                 (getattr(model, "rpn_head", None), "model.test_cfg.rpn.nms"),
                                 (getattr(model, "roi_head", None), "model.test_cfg.rcnn.nms")) if h is not None]
    for head, path in heads:
        if getattr(getattr(head, "test_cfg", None), "soft", None) is not None:
            raise DetError(f"{path}: soft_nms cannot be exported (ONNX has no soft-NMS operator and a hard-NMS "
                           "graph would change the detections); export with nms.type nms")


def wrap(model: torch.nn.Module, imgsz: tuple[int, int], nms: bool) -> tuple[torch.nn.Module, list[str], tuple[int, int]]:
    """(traceable module, output names, output groups) for the model's family."""
    if is_two_stage(model):
        from det.core.deploy.two_stage import ExportedTwoStage

        wrapper = ExportedTwoStage(model, imgsz)
        return wrapper, ["boxes", "scores", "labels"] + (["masks"] if wrapper.with_mask else []), (0, 0)
    if is_detr(model):
        from det.core.deploy.detr import ExportedDETR

        return ExportedDETR(model, imgsz), ["boxes", "scores", "labels"], (0, 0)
    from det.core.deploy.rtmdet_ins import ExportedRTMDetIns, is_rtmdet_ins

    if is_rtmdet_ins(model):
        return ExportedRTMDetIns(model, imgsz), ["boxes", "scores", "labels", "mask_logits"], (0, 0)
    groups = output_groups(model, imgsz)
    names = ["boxes", "scores", "labels"] if nms else [f"out{g}_l{lv}" for g in range(groups[0]) for lv in range(groups[1])]
    return ExportedDense(model, imgsz, nms), names, groups


def default_imgsz(pipeline: list[dict], divisor: int) -> tuple[int, int]:
    """(h, w): the test pipeline's Pad size, else the largest side of its Resize scale, rounded up."""
    pad = next((t for t in pipeline if t.get("type") == "Pad" and t.get("size")), None)
    if pad is not None:
        w, h = pad["size"]
        return int(h), int(w)
    resize = next((t for t in pipeline if t.get("type") == "Resize" and t.get("scale")), None)
    if resize is None:
        raise DetError("--imgsz: the preset's test pipeline has no Resize or Pad size; pass --imgsz H W")
    side = max(int(v) for v in resize["scale"])
    side = -(-side // divisor) * divisor
    return side, side


def fit_pipeline(detector, imgsz: tuple[int, int]) -> None:
    """Make the test pipeline resize and pad into the export size (kept in the sidecar's preset)."""
    import copy

    from det.core.apis.detector import inference_pipeline_cfg, test_loader_cfg
    from det.core.data.transforms import build_pipeline

    cfg = copy.deepcopy(detector.preset)
    for t in test_loader_cfg(cfg)["pipeline"]:
        if isinstance(t, dict) and t.get("type") == "Resize" and t.get("scale"):
            t["scale"] = [imgsz[1], imgsz[0]]
        if isinstance(t, dict) and t.get("type") == "Pad" and t.get("size"):
            t["size"] = [imgsz[1], imgsz[0]]
    detector.preset = cfg
    detector.pipeline = build_pipeline(inference_pipeline_cfg(cfg), "data.test.pipeline")


def check_options(opts: ExportOptions) -> None:
    if opts.format not in FORMATS:
        raise DetError(f"--format: unknown format '{opts.format}' (one of: {', '.join(FORMATS)})")
    if opts.batch < 1:
        raise DetError(f"--batch: must be >= 1, got {opts.batch}")
    if not 11 <= opts.opset <= 21:
        raise DetError(f"--opset: must be in 11..21, got {opts.opset}")
    if opts.dynamic and opts.nms:
        raise DetError("--dynamic: post-processing in the graph needs a fixed --imgsz; use --no-nms for dynamic shapes")
    if opts.dynamic and opts.format == "torchscript":
        raise DetError("--dynamic: TorchScript traces are specialised to one shape; use --format onnx or openvino")


def output_path(ckpt: Path, opts: ExportOptions) -> Path:
    return Path(opts.out) if opts.out is not None else Path(ckpt).with_suffix(FORMATS[opts.format])


def export_checkpoint(ckpt: str | Path, opts: ExportOptions, log=print) -> dict:
    """Export `ckpt`; returns a summary (files, input size, verification numbers)."""
    from det.core.apis.detector import Detector, inference_pipeline_cfg

    check_options(opts)
    out = output_path(Path(ckpt), opts)
    if out.suffix != FORMATS[opts.format]:
        raise DetError(f"--out: {out} should end in {FORMATS[opts.format]} for --format {opts.format}")
    ensure_new(out, opts.force)
    ensure_new(sidecar_path(out), opts.force)
    detector = Detector.from_checkpoint(ckpt, device="cpu", score_thr=0.0)
    model = detector.model.float().eval()
    check_family(model, opts)
    divisor = max(detector.size_divisor, model.data_preprocessor.pad_size_divisor, 1)
    imgsz = tuple(opts.imgsz) if opts.imgsz else default_imgsz(inference_pipeline_cfg(detector.preset), divisor)
    if imgsz[0] % divisor or imgsz[1] % divisor:
        raise DetError(f"--imgsz: {imgsz[0]} {imgsz[1]} must be multiples of the padding divisor {divisor}")
    if opts.imgsz:
        fit_pipeline(detector, imgsz)
    wrapper, names, groups = wrap(model, imgsz, opts.nms)
    meta = build_sidecar(model, detector.preset, detector.class_names, opts.format, imgsz, opts.batch, opts.dynamic,
                         opts.nms, opts.opset if opts.format != "torchscript" else None, names, groups,
                         detector.size_divisor, detector.pad_val)
    wrapper = wrapper.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".det-export-", dir=out.parent) as tmp:
        tmp_file = Path(tmp) / f"model{FORMATS[opts.format]}"
        log(f"tracing {type(model).__name__} at {imgsz[0]}x{imgsz[1]}, batch {opts.batch}, "
            f"{'post-processing in the graph' if opts.nms else 'raw head outputs'} -> {opts.format}")
        _write(wrapper, tmp_file, opts, imgsz, names)
        write_sidecar(tmp_file, meta)
        report = {"verify": None}
        if opts.verify:
            from det.core.deploy.verify import verify_export

            report["verify"] = verify_export(detector, tmp_file, opts.format, imgsz, opts.batch)
            log(report["verify"]["summary"])
            if not report["verify"]["ok"]:
                raise VerifyError(f"verification failed: {report['verify']['summary']}")
        files = _move_into_place(tmp_file, out)
    write_sidecar(out, meta)
    report.update(files=[str(f) for f in files] + [str(sidecar_path(out))], input_size=list(imgsz),
                  format=opts.format, nms=opts.nms)
    return report


def _write(wrapper: torch.nn.Module, path: Path, opts: ExportOptions, imgsz: tuple[int, int], names: list[str]) -> None:
    images = torch.zeros(opts.batch, 3, *imgsz)
    sizes = torch.tensor([list(imgsz)] * opts.batch, dtype=torch.float32)
    args = (images, sizes) if opts.nms else (images,)
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")
        if opts.format == "torchscript":
            torch.jit.save(torch.jit.trace(wrapper, args, check_trace=False), str(path))
            return
        onnx_file = path if opts.format == "onnx" else path.with_suffix(".onnx")
        dynamic_axes = {"images": {0: "batch", 2: "height", 3: "width"}} if opts.dynamic else None
        torch.onnx.export(wrapper, args, str(onnx_file), dynamo=False, opset_version=opts.opset,
                          input_names=["images", "image_sizes"][: len(args)], output_names=names,
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
    if opts.format == "openvino":
        from det.core.deploy.extras import require

        ov = require("openvino", "--format openvino")
        ov.save_model(ov.convert_model(str(onnx_file)), str(path), compress_to_fp16=False)
        onnx_file.unlink()


def _move_into_place(tmp_file: Path, out: Path) -> list[Path]:
    """Rename the verified file (and OpenVINO's .bin) to `out`."""
    moved = []
    if tmp_file.suffix == ".xml":
        tmp_file.with_suffix(".bin").replace(out.with_suffix(".bin"))
        moved.append(out.with_suffix(".bin"))
    tmp_file.replace(out)
    return [out, *moved]
