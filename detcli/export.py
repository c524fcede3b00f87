"""`det export`: a checkpoint as ONNX, OpenVINO IR or TorchScript with a FILE.det.json sidecar."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from det.cli.common import ForceOption, JsonOption, ModelOption, err, print_json


def export(
    source: Optional[str] = typer.Argument(None, metavar="CKPT", help="Checkpoint (.pt) written by det train."),
    fmt: str = typer.Option("onnx", "--format", help="onnx, openvino (IR .xml + .bin) or torchscript."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: CKPT with .onnx/.xml/.torchscript)."),
    imgsz: Optional[tuple[int, int]] = typer.Option(None, "--img-size", "--imgsz", help="Input size H W (default: the test pipeline's Pad size or Resize scale)."),
    dynamic: bool = typer.Option(False, "--dynamic", help="Dynamic batch, height and width (needs --no-nms)."),
    batch: int = typer.Option(1, "--batch", help="Static batch size of the exported graph."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (onnx and openvino)."),
    nms: bool = typer.Option(True, "--nms/--no-nms", help="Post-processing (NMS) in the graph, or raw head outputs that det decodes."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip running the export against PyTorch."),
    model: Optional[str] = ModelOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Export a trained detector and verify it against PyTorch (boxes 1e-2 px, scores 1e-3, labels).

    Writes FILE and FILE.det.json (classes, input size, normalisation, padding, post-processing,
    preset). RTMDet, RTMDet-Ins, RetinaNet, FCOS, YOLOX, Faster / Mask / Cascade R-CNN, DETR,
    Deformable DETR and DINO export (two-stage and DETR-family graphs need --opset >= 16 and keep
    their post-processing); what cannot export (soft-NMS presets) exits 2 saying why.

    Example: det export work_dirs/demo/best.pt --format onnx --out rtmdet.onnx

    Example: det export --model rtmdet_tiny_8xb32-300e_coco --format openvino --out rtmdet_tiny.xml
    """
    from det.core.deploy.export import ExportOptions, export_checkpoint
    from det.core.deploy.source import source_or_model

    opts = ExportOptions(format=fmt, out=out, imgsz=imgsz, dynamic=dynamic, batch=batch, opset=opset, nms=nms,
                         verify=not no_verify, force=force)
    report = export_checkpoint(source_or_model(source, model), opts, log=lambda msg: err.print(msg, markup=False, highlight=False))
    if json_:
        print_json(report)
        return
    for f in report["files"]:
        err.print(f"wrote {f}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
