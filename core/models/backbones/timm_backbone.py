"""Any timm model as a backbone (`timm`, the optional extra `det[timm]`): `features_only`
feature pyramids at `out_indices`; the channels of those maps are exposed as
`out_feature_channels`, which the detector passes to a neck that leaves `in_channels` out."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from det.core.config.build import config_path
from det.core.errors import ConfigError


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise ConfigError(f"{config_path('type')}: TimmBackbone needs timm: pip install 'det[timm]'") from None
    return timm


class TimmBackbone(nn.Module):
    """`timm.create_model(model_name, features_only=True, out_indices=...)`; its tensors live
    under `timm_model.` (MMDetection's TIMMBackbone layout). `pretrained: true` loads timm's own
    ImageNet weights (timm's cache); `model.backbone.init` works as for every backbone."""

    def __init__(self, model_name: str, out_indices: Sequence[int] = (1, 2, 3, 4), pretrained: bool = False,
                 in_channels: int = 3, **kwargs: Any) -> None:
        super().__init__()
        timm = _timm()
        if model_name not in timm.list_models() and model_name.split(".")[0] not in timm.list_models():
            from det.core.errors import did_you_mean

            raise ConfigError(f"{config_path('model_name')}: unknown timm model '{model_name}'"
                              f"{did_you_mean(model_name, timm.list_models())}")
        # what decides the feature model's tensor names (timm:// init builds its twin with them)
        self.timm_args = {"features_only": True, "out_indices": tuple(out_indices), "in_chans": in_channels}
        self.timm_model = timm.create_model(model_name, pretrained=pretrained, **self.timm_args, **kwargs)
        self.out_feature_channels = list(self.timm_model.feature_info.channels())
        self.strides = list(self.timm_model.feature_info.reduction())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.timm_model(x))
