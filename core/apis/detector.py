"""`Detector`: a trained checkpoint as a Python callable.

    from det.core.apis import Detector
    det = Detector.from_checkpoint("runs/train/1/last.pt", device="cpu")
    pred = det("street.jpg")            # one Prediction
    preds = det(["a.jpg", img_bgr, PIL.Image.open("b.png")])  # a list, in input order
    pred.save("drawn.jpg")              # or pred.plot() -> BGR array, pred.to_dict() -> JSON record

Images run through the preset's test pipeline (`data.test.pipeline` without the loading
steps), are batched, padded and sent through the model under `torch.inference_mode`
(optionally bf16 autocast and channels_last); predictions come back in original-image pixels.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from det.core.engine.device import resolve_device
from det.core.errors import ConfigError, DetError, did_you_mean
from det.core.inference.prediction import Prediction, from_instances
from det.core.inference.reader import imread
from det.core.structures.panoptic import PanopticPrediction

# Pipeline steps that read files; inference feeds decoded images instead.
LOADING_STEPS = frozenset({"LoadImage", "LoadImageFromFile", "LoadAnnotations", "FilterAnnotations"})


def test_loader_cfg(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """The preset's `data.test` loader section, or `data.val` when there is no test section."""
    data = cfg.get("data") or {}
    for split in ("test", "val"):
        section = data.get(split)
        if isinstance(section, Mapping) and section.get("pipeline"):
            return section
    raise ConfigError("data.test.pipeline: missing; the preset needs a test pipeline for inference")


def inference_pipeline_cfg(cfg: Mapping[str, Any]) -> list[dict]:
    """The test pipeline without its file-loading steps."""
    pipeline = test_loader_cfg(cfg)["pipeline"]
    return [dict(t) for t in pipeline if not (isinstance(t, Mapping) and t.get("type") in LOADING_STEPS)]


def class_names_of(ckpt: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    meta = ckpt.get("meta") or {}
    names = meta.get("classes") or (cfg.get("data") or {}).get("classes")
    if not names:
        raise DetError("checkpoint: no class names in meta.classes or the preset's data.classes")
    return [str(n) for n in names]


class Detector:
    """A model + its test pipeline + class names; call it on paths, BGR arrays, PIL images or
    lists of them.

    Example:
        >>> from det.core.apis import Detector
        >>> det = Detector.from_checkpoint("runs/train/1/last.pt", device="cpu")
        >>> pred = det("street.jpg")          # a Prediction: bboxes, scores, labels, class_names
        >>> pred.save("street_drawn.jpg")     # drawn image; pred.plot() returns it as an array
    """

    def __init__(self, model: torch.nn.Module, pipeline_cfg: list[dict], class_names: Sequence[str],
                 device: str | torch.device | None = "cpu", score_thr: float = 0.3,
                 classes: Sequence[str] | None = None, amp: bool = False, channels_last: bool = False,
                 batch_size: int = 1, preset: Mapping[str, Any] | None = None, size_divisor: int = 32,
                 pad_val: int = 0) -> None:
        from det.core.data.transforms import build_pipeline

        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.pipeline = build_pipeline(pipeline_cfg, "data.test.pipeline")
        self.class_names = list(class_names)
        self.score_thr = float(score_thr)
        self.keep_labels = self._labels_for(classes)
        self.amp = amp
        self.batch_size = max(1, int(batch_size))
        self.preset = dict(preset or {})
        self.size_divisor, self.pad_val = int(size_divisor or 1), int(pad_val)

    @property
    def panoptic_num_things(self) -> int | None:
        """The number of thing classes of a panoptic model (labels below it are things), else None."""
        if getattr(self.model, "task", None) != "panoptic":
            return None
        return int(self.model.num_things_classes)

    def configure(self, score_thr: float | None = None, classes: Sequence[str] | None = None,
                  batch_size: int | None = None) -> "Detector":
        """Change the score threshold, class filter or batch size after loading (None keeps one)."""
        if score_thr is not None:
            self.score_thr = float(score_thr)
        if classes is not None:
            self.keep_labels = self._labels_for(classes)
        if batch_size is not None:
            self.batch_size = max(1, int(batch_size))
        return self

    def _labels_for(self, classes: Sequence[str] | None) -> np.ndarray | None:
        if not classes:
            return None
        labels = []
        for name in classes:
            if name not in self.class_names:
                raise DetError(f"--classes: unknown class '{name}'{did_you_mean(name, self.class_names)}")
            labels.append(self.class_names.index(name))
        return np.array(sorted(set(labels)), np.int64)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = "cpu", preset: str | None = None,
                        overrides: Sequence[str] = (), **kwargs: Any) -> "Detector":
        """Build the model from the preset stored in the checkpoint (or `preset`, a file or a
        bundled name, with `overrides` as in --set) and load its weights."""
        from det.core.config import apply_overrides, load_preset
        from det.core.fileio import load_checkpoint
        from det.core.models import build_detector
        from det.core.models.layers import fuse_conv_bn

        ckpt = load_checkpoint(path)
        if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt:
            raise DetError(f"{path}: not a det checkpoint (no 'state_dict')")
        if preset is not None:
            cfg = load_preset(preset, list(overrides))
        elif ckpt.get("preset"):
            cfg = apply_overrides(dict(ckpt["preset"]), list(overrides)) if overrides else dict(ckpt["preset"])
        else:
            raise DetError(f"{path}: checkpoint carries no preset; pass --preset")
        model = build_detector(cfg["model"])
        from det.core.engine.checkpoint import fit_weights

        fit_weights(model, ckpt["state_dict"], path)
        # inference only: fold BatchNorm into the convs (same outputs to 1e-4, fewer passes)
        model = fuse_conv_bn(model.eval())
        loader = test_loader_cfg(cfg)
        kwargs.setdefault("size_divisor", int(loader.get("size_divisor", 32) or 1))
        kwargs.setdefault("pad_val", int(loader.get("pad_val", 0) or 0))
        return cls(model, inference_pipeline_cfg(cfg), class_names_of(ckpt, cfg), device=device, preset=cfg, **kwargs)

    # -- steps the CLI runs separately (pipeline in the reader thread, forward in the main one) --
    def preprocess(self, image: np.ndarray, img_path: str = "") -> dict:
        """Run the test pipeline on a BGR uint8 image -> {"inputs", "sample"}."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise DetError(f"{img_path or 'image'}: expected a BGR array of shape (H, W, 3), got {getattr(image, 'shape', type(image))}")
        if image.dtype != np.uint8:
            image = np.clip(image, 0, 255).astype(np.uint8)
        h, w = image.shape[:2]
        record = {"img": image, "img_path": img_path, "img_id": -1, "ori_shape": (h, w), "img_shape": (h, w),
                  "scale_factor": (1.0, 1.0), "flip_direction": None}
        out = self.pipeline(record)
        if out is None or "inputs" not in out:
            raise ConfigError("data.test.pipeline: must end with Pack and keep every image")
        return out

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def forward(self, inputs: torch.Tensor, samples: list) -> list:
        """The model's own prediction on a padded uint8 batch (no pipeline, no filtering)."""
        with torch.inference_mode(), self._autocast():
            return self.model.predict(inputs.to(self.device, non_blocking=True), samples)

    def collate(self, prepared: Sequence[dict]) -> tuple[torch.Tensor, list]:
        """Pad to one batch exactly as `det test` does (the test loader's size_divisor, pad_val)."""
        from det.core.data.loader import collate

        batch = collate(list(prepared), size_divisor=self.size_divisor, pad_val=self.pad_val)
        return batch["inputs"], batch["samples"]

    def predict_prepared(self, prepared: Sequence[dict]) -> list[Prediction]:
        """Predictions for pipeline outputs, in batches of `batch_size`."""
        preds: list[Prediction] = []
        for start in range(0, len(prepared), self.batch_size):
            chunk = prepared[start:start + self.batch_size]
            inputs, samples = self.collate(chunk)
            for out, sample in zip(self.forward(inputs, samples), samples):
                panoptic = out if isinstance(out, PanopticPrediction) else None
                inst = panoptic.instances if panoptic is not None else out
                pred = from_instances(inst, self.class_names, sample.img_path, *sample.output_shape())
                if panoptic is not None:  # the fused map stays whole; the filter narrows the detections
                    pred.panoptic, pred.panoptic_classes = panoptic, self.class_names
                    pred.num_things = int(self.panoptic_num_things or 0)
                preds.append(self._filter(pred))
        return preds

    def _filter(self, pred: Prediction) -> Prediction:
        pred = pred.filter(self.score_thr, self.keep_labels)
        return pred[np.argsort(-pred.scores, kind="stable")]

    def predict_arrays(self, images: Sequence[np.ndarray], paths: Sequence[str] | None = None) -> list[Prediction]:
        paths = list(paths) if paths is not None else [""] * len(images)
        return self.predict_prepared([self.preprocess(img, p) for img, p in zip(images, paths)])

    def __call__(self, inputs: Any) -> Prediction | list[Prediction]:
        """`inputs`: a path, a BGR (H, W, 3) uint8 array, a PIL image, or a list of them."""
        single = isinstance(inputs, (str, Path, np.ndarray)) or _is_pil(inputs)
        items = [inputs] if single else list(inputs)
        images, paths = [], []
        for item in items:
            if isinstance(item, (str, Path)):
                img = imread(str(item))
                if img is None:
                    raise DetError(f"{item}: cannot read image" if Path(item).exists() else f"{item}: image not found")
                images.append(img)
                paths.append(str(item))
            elif isinstance(item, np.ndarray):
                images.append(item)
                paths.append("")
            elif _is_pil(item):
                images.append(np.ascontiguousarray(np.asarray(item.convert("RGB"))[:, :, ::-1]))  # RGB -> BGR
                paths.append(str(getattr(item, "filename", "") or ""))
            else:
                raise DetError(f"Detector: expected a path, a BGR array or a PIL image, got {type(item).__name__}")
        preds = self.predict_arrays(images, paths)
        for pred, img in zip(preds, images):
            pred.image = img
        return preds[0] if single else preds


def _is_pil(obj: Any) -> bool:
    """A PIL image (without importing PIL when it is not installed)."""
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "convert")
