"""Inference backends: `torch` runs a det checkpoint (or an exported TorchScript file), while
`onnxruntime` and `openvino` run files written by `det export`. All of them are a `Detector`,
so `det infer`, `det serve` and the Python API share the pipeline, batching, filtering and
writers; only the network forward differs.

    detector = load_detector("model.onnx", backend="onnxruntime", score_thr=0.3)
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from det.core.apis.detector import Detector, inference_pipeline_cfg
from det.core.errors import DetError
from det.core.structures import Instances

BACKENDS = ("torch", "onnxruntime", "openvino")
EXPORTED_SUFFIXES = {".onnx": "onnxruntime", ".xml": "openvino", ".torchscript": "torch"}


def load_detector(weights: str | Path, backend: str = "torch", device: str = "auto", **kwargs: Any) -> Detector:
    """A Detector over a checkpoint (torch) or an exported file with its FILE.det.json sidecar."""
    if backend not in BACKENDS:
        raise DetError(f"--backend: unknown backend '{backend}' (one of: {', '.join(BACKENDS)})")
    path = Path(weights)
    if backend == "torch" and path.suffix not in EXPORTED_SUFFIXES:
        return Detector.from_checkpoint(path, device=device, **kwargs)
    if path.suffix == ".pt" or (backend != "torch" and path.suffix not in EXPORTED_SUFFIXES):
        raise DetError(f"--weights: {path} is not an exported model for --backend {backend} "
                       f"(det export writes .onnx, .xml or .torchscript)")
    return ExportedDetector.from_file(path, backend, **{k: v for k, v in kwargs.items() if k not in ("preset", "overrides")})


class ExportedDetector(Detector):
    """A Detector whose forward runs an exported graph; the det model built from the sidecar's
    preset supplies the data preprocessor and, for --no-nms files, the head's decoding."""

    @classmethod
    def from_file(cls, path: Path, backend: str, **kwargs: Any) -> "ExportedDetector":
        from det.core.deploy.runtimes import RUNTIME_OF_FORMAT, Session
        from det.core.deploy.sidecar import read_sidecar
        from det.core.models import build_detector

        meta = read_sidecar(path)
        runtime = RUNTIME_OF_FORMAT.get(meta["format"])
        if runtime != backend:
            raise DetError(f"{path}: a {meta['format']} export runs with --backend {runtime}, not {backend}")
        kwargs.pop("amp", None), kwargs.pop("channels_last", None)
        model = build_detector(meta["preset"]["model"])
        pad = meta.get("padding", {})
        det = cls(model, inference_pipeline_cfg(meta["preset"]), meta["classes"], device="cpu", preset=meta["preset"],
                  size_divisor=int(pad.get("size_divisor", 32)), pad_val=int(pad.get("pad_val", 0)), **kwargs)
        det.session, det.meta, det.backend = Session(path, runtime), meta, backend
        return det

    def forward(self, inputs: torch.Tensor, samples: list) -> list:
        with torch.inference_mode():
            x, samples = self.model.data_preprocessor(inputs.to(self.device), samples)
            x = self._fit(x)
            outs = self._run_chunks(x, samples)
            if self.meta["nms"]:
                return [self._instances(*(o[i] for o in outs[:3]), s, outs[3][i] if len(outs) > 3 else None)
                        for i, s in enumerate(samples)]
            groups, levels = self.meta["output_groups"]
            maps = [[torch.from_numpy(outs[g * levels + lv]) for lv in range(levels)] for g in range(groups)]
            return self.model.bbox_head.predict_by_feat(*maps, samples=samples, rescale=True)

    def _fit(self, x: torch.Tensor) -> torch.Tensor:
        """Pad the batch to the exported input size (bottom/right, as the preprocessor does)."""
        if self.meta.get("dynamic"):
            return x
        h, w = self.meta["input_size"]
        if x.shape[-2] > h or x.shape[-1] > w:
            raise DetError(f"image: resized to {tuple(x.shape[-2:])}, larger than the exported input size ({h}, {w}); "
                           "export again with a larger --imgsz")
        pad_value = float(self.model.data_preprocessor.pad_value)
        return F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]), value=pad_value)

    def _run_chunks(self, x: torch.Tensor, samples: Sequence) -> list[np.ndarray]:
        """Run in chunks of the exported batch size (the last one padded), outputs concatenated."""
        n = x.shape[0]
        step = n if self.meta.get("dynamic") else int(self.meta.get("batch", 1))
        sizes = np.array([s.input_shape for s in samples], np.float32).reshape(-1, 2)
        chunks: list[list[np.ndarray]] = []
        for start in range(0, n, step):
            xb, sb = x[start:start + step].numpy(), sizes[start:start + step]
            short = step - xb.shape[0]
            if short:
                xb = np.concatenate([xb, np.zeros((short, *xb.shape[1:]), np.float32)])
                sb = np.concatenate([sb, np.repeat(sizes[:1], short, 0)])
            feeds = {"images": np.ascontiguousarray(xb, np.float32)}
            if self.meta["nms"]:
                feeds["image_sizes"] = sb
            res = self.session.run(feeds)
            chunks.append([r[: step - short] for r in res])
        return [np.concatenate(parts) for parts in zip(*chunks)]

    def _instances(self, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, sample: Any,
                   masks: np.ndarray | None = None) -> Instances:
        keep = labels >= 0
        b = torch.from_numpy(np.ascontiguousarray(boxes[keep], np.float32))
        clip = bool(self.meta.get("clip_boxes", True))
        inst = Instances(bboxes=sample.boxes_to_original(b, clip=clip), scores=torch.from_numpy(scores[keep].astype(np.float32)),
                         labels=torch.from_numpy(labels[keep].astype(np.int64)))
        if masks is not None and "mask_logits" in self.meta["outputs"]:  # RTMDet-Ins: the head's own upsampling
            inst.masks = self.model.bbox_head.masks_from_logits(torch.from_numpy(np.ascontiguousarray(masks[keep])),
                                                                 sample, rescale=True)
        elif masks is not None:
            inst.masks = self._paste(torch.from_numpy(np.ascontiguousarray(masks[keep], np.float32)), inst.bboxes, sample)
        return inst

    def _paste(self, probs: torch.Tensor, boxes: torch.Tensor, sample: Any) -> torch.Tensor:
        """RoI mask probabilities -> (N, H, W) bool masks in the original image (as BaseRoIHead.predict_masks)."""
        from det.core.models.task.masks import paste_masks

        return paste_masks(sample.unflip_maps(probs), boxes, *sample.output_shape(),
                           self.model.roi_head.test_cfg.mask_thr_binary)
