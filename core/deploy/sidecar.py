"""FILE.det.json: everything a runtime needs beside the exported model (classes, input size,
normalisation, padding, post-processing settings, the preset, det's version)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from det.core.errors import DetError
from det.core.fileio import atomic_write_json, read_json

SCHEMA = 1


def sidecar_path(model_file: str | Path) -> Path:
    return Path(f"{model_file}.det.json")


def det_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("det")
    except PackageNotFoundError:
        return "unknown"


def build_sidecar(model: Any, cfg: dict, classes: list[str], fmt: str, imgsz: tuple[int, int], batch: int,
                  dynamic: bool, nms: bool, opset: int | None, outputs: list[str], groups: tuple[int, int],
                  size_divisor: int, pad_val: int) -> dict:
    pre = model.data_preprocessor
    return {
        "schema": SCHEMA, "det_version": det_version(), "format": fmt, "family": type(model).__name__,
        "classes": list(classes), "input_size": list(imgsz), "batch": batch, "dynamic": dynamic, "opset": opset,
        "nms": nms, "inputs": ["images", "image_sizes"] if nms else ["images"], "outputs": outputs,
        "output_groups": list(groups),
        "normalize": {"mean": pre.mean.flatten().tolist(), "std": pre.std.flatten().tolist(),
                      "bgr_to_rgb": bool(pre.swap_channels), "layout": "NCHW float32, (x - mean) / std"},
        "padding": {"size_divisor": size_divisor, "pad_val": pad_val, "pad_value": pre.pad_value,
                    "where": "bottom/right"},
        "postprocess": postprocess_settings(model),
        "boxes": "xyxy in input-image pixels (divide by the resize scale for original pixels)",
        "clip_boxes": type(model).__name__ != "YOLOX",  # YOLOX maps boxes back unclipped (as MMDetection)
        **({"masks": "(B, K, M, M) mask probabilities of each box's class inside its box; det pastes them "
                     "into the image (threshold postprocess.rcnn.mask_thr_binary)"} if "masks" in outputs else {}),
        "preset": cfg,
    }


def final_settings(model: Any) -> Any:
    """The final post-processing settings (score_thr, max_per_img, ...) of a detector."""
    if hasattr(model, "roi_head"):
        return model.roi_head.test_cfg
    if not hasattr(model.bbox_head, "test_cfg"):  # DETR heads: top max_per_img, no threshold
        from types import SimpleNamespace

        return SimpleNamespace(score_thr=0.0, max_per_img=model.bbox_head.max_per_img)
    return model.bbox_head.test_cfg


def postprocess_settings(model: Any) -> dict:
    if hasattr(model, "roi_head"):
        return {"rpn": asdict(model.rpn_head.test_cfg), "rcnn": asdict(model.roi_head.test_cfg)}
    settings = final_settings(model)
    return vars(settings).copy() if not hasattr(settings, "__dataclass_fields__") else asdict(settings)


def write_sidecar(model_file: str | Path, meta: dict) -> Path:
    return atomic_write_json(sidecar_path(model_file), meta, indent=1)


def read_sidecar(model_file: str | Path) -> dict:
    path = sidecar_path(model_file)
    if not path.is_file():
        raise DetError(f"{path}: sidecar not found (det export writes it next to {Path(model_file).name})")
    meta = read_json(path, "sidecar")
    for key in ("classes", "preset", "input_size", "nms", "outputs", "format"):
        if key not in meta:
            raise DetError(f"{path}: missing key '{key}'")
    return meta
