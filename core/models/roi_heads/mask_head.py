"""FCN mask head: convs on 14 x 14 RoI features, a 2x deconvolution and per-class 28 x 28
mask logits trained with binary cross-entropy on the mask of the RoI's class."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from det.core.models.layers import ConvModule


class FCNMaskHead(nn.Module):
    """MMDetection's FCNMaskHead (`convs.i.conv`, `upsample`, `conv_logits`)."""

    def __init__(self, num_classes: int, num_convs: int = 4, roi_feat_size: int = 14, in_channels: int = 256,
                 conv_kernel_size: int = 3, conv_out_channels: int = 256, class_agnostic: bool = False,
                 norm_cfg: dict | None = None, loss_mask: dict | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.class_agnostic = class_agnostic
        self.roi_feat_size = roi_feat_size
        self.loss_weight = _mask_loss_weight(loss_mask)
        pad = (conv_kernel_size - 1) // 2
        self.convs = nn.ModuleList(
            ConvModule(in_channels if i == 0 else conv_out_channels, conv_out_channels, conv_kernel_size,
                       padding=pad, norm_cfg=norm_cfg) for i in range(num_convs))
        last = conv_out_channels if num_convs else in_channels
        self.upsample = nn.ConvTranspose2d(last, conv_out_channels, 2, stride=2)
        self.conv_logits = nn.Conv2d(conv_out_channels, 1 if class_agnostic else num_classes, 1)
        for m in (self.upsample, self.conv_logits):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)

    @property
    def mask_size(self) -> int:
        return self.roi_feat_size * 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)
        return self.conv_logits(F.relu(self.upsample(x)))

    def class_logits(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(K, C, M, M) -> (K, M, M): the channel of each RoI's class."""
        if self.class_agnostic:
            return logits[:, 0]
        return logits[torch.arange(logits.size(0), device=logits.device), labels]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        if logits.size(0) == 0:
            return {"loss_mask": logits.sum() * 0}
        pred = self.class_logits(logits, labels).float()
        return {"loss_mask": self.loss_weight * F.binary_cross_entropy_with_logits(pred, targets, reduction="mean")}


def _mask_loss_weight(cfg: dict | None) -> float:
    """`loss_mask`: per-pixel binary cross-entropy is the only mask loss; its type and
    use_mask are checked (not ignored), loss_weight scales it."""
    from det.core.config.build import config_path
    from det.core.errors import ConfigError
    from det.core.config.build import check_keys

    cfg = check_keys(cfg, {"type", "use_mask", "loss_weight"}, "loss_mask")
    if cfg.get("type", "CrossEntropyLoss") != "CrossEntropyLoss" or not cfg.get("use_mask", True):
        raise ConfigError(f"{config_path('loss_mask')}: the mask loss is per-pixel binary cross-entropy "
                          "({type: CrossEntropyLoss, use_mask: true, loss_weight: W})")
    return float(cfg.get("loss_weight", 1.0))
