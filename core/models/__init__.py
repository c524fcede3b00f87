"""Detection models built from presets: `build_detector(preset["model"])`.

Each component kind has its table next to its classes (BACKBONES, NECKS, HEADS, DETECTORS,
LOSSES, ROI_HEADS, ASSIGNERS, CODERS, PRIOR_GENERATORS, SAMPLERS, PREPROCESSORS).
"""
from __future__ import annotations

from torch import nn

from det.core.config.build import build
from det.core.models.backbones import BACKBONES
from det.core.models.data_preprocessor import PREPROCESSORS, DetDataPreprocessor
from det.core.models.dense_heads import HEADS
from det.core.models.detectors import DETECTORS
from det.core.models.losses import LOSSES
from det.core.models.necks import NECKS
from det.core.models.roi_heads import ROI_HEADS
from det.core.models.task import ASSIGNERS, CODERS, PRIOR_GENERATORS, SAMPLERS


def build_detector(model_cfg: dict) -> nn.Module:
    """Build the `model` section of a resolved preset; errors name `model.<key>`."""
    return build(model_cfg, DETECTORS, "model")


__all__ = [
    "ASSIGNERS", "BACKBONES", "CODERS", "DETECTORS", "DetDataPreprocessor", "HEADS", "LOSSES", "NECKS",
    "PREPROCESSORS", "PRIOR_GENERATORS", "ROI_HEADS", "SAMPLERS", "build_detector",
]
