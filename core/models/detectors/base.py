"""What every detector shares: the data preprocessor, backbone and optional neck."""
from __future__ import annotations

import torch
from torch import nn

from det.core.config.build import build
from det.core.models.backbones import BACKBONES
from det.core.models.data_preprocessor import PREPROCESSORS
from det.core.models.necks import NECKS


def _backbone_init(cfg: dict | None) -> dict | None:
    if cfg is None:
        return None
    from det.core.config.build import config_path
    from det.core.zoo.pretrained import check_init

    return check_init(cfg, config_path("backbone.init"))


class DetectorTrunk(nn.Module):
    """Builds `data_preprocessor`, `backbone` and `neck` (errors carry their preset paths) and
    runs them in `extract_feat`; subclasses add their heads."""

    def __init__(self, backbone: dict, neck: dict | None, data_preprocessor: dict | None) -> None:
        super().__init__()
        self.data_preprocessor = build(data_preprocessor or {"type": "DetDataPreprocessor"}, PREPROCESSORS,
                                       "data_preprocessor")
        backbone = dict(backbone)
        # ImageNet initialisation for training from a preset (det.core.zoo.pretrained), not a module setting
        self.backbone_init = _backbone_init(backbone.pop("init", None))
        self.backbone = build(backbone, BACKBONES, "backbone")
        channels = getattr(self.backbone, "out_feature_channels", None)
        if channels is not None and isinstance(neck, dict) and "in_channels" not in neck:
            neck = {**neck, "in_channels": list(channels)}  # e.g. TimmBackbone: known once built
        self.neck = build(neck, NECKS, "neck")

    def extract_feat(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.backbone(x)
        return self.neck(feats) if self.neck is not None else feats
