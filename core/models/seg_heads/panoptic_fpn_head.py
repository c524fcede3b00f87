"""Panoptic FPN's semantic head (MMDetection's PanopticFPNHead): every FPN level from
`start_level` to `end_level` goes through 3x3 conv + GN + ReLU blocks, each followed by 2x
bilinear upsampling until stride 4 (`ConvUpsample`); the sum is classified by a 1x1 conv into the
stuff classes plus one class for all things. Ground truth: the panoptic semantic map with thing
labels merged into that last class, stuff labels shifted to start at 0, 255 ignored."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import build
from det.core.models.layers import ConvModule
from det.core.models.losses import LOSSES
from det.core.structures import DetSample
from det.core.structures.panoptic import IGNORE_LABEL


class ConvUpsample(nn.Module):
    """`num_layers` ConvModules; the first `num_upsample` of them are each followed by a 2x
    bilinear upsampling (MMDetection's ConvUpsample; parameter names `conv.<i>.conv/gn`)."""

    def __init__(self, in_channels: int, inner_channels: int, num_layers: int = 1, num_upsample: int | None = None,
                 norm_cfg: dict | None = None) -> None:
        super().__init__()
        self.num_upsample = num_layers if num_upsample is None else num_upsample
        self.conv = nn.ModuleList(
            ConvModule(in_channels if i == 0 else inner_channels, inner_channels, 3, padding=1, norm_cfg=norm_cfg)
            for i in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.conv):
            x = conv(x)
            if i < self.num_upsample:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return x


def pad_sem_seg(samples: Sequence[DetSample], shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(N, H, W) long semantic maps padded to the batch shape with 255 (the loader pads images only)."""
    out = torch.full((len(samples), *shape), IGNORE_LABEL, dtype=torch.long, device=device)
    for i, s in enumerate(samples):
        if s.gt_sem_seg is None:
            from det.core.errors import DataError

            raise DataError(f"{s.img_path or 'a training image'}: Panoptic FPN needs a semantic map; load the data "
                            "with LoadPanopticAnnotations (with_seg: true)")
        seg = s.gt_sem_seg.to(device=device, dtype=torch.long)
        h, w = min(seg.shape[0], shape[0]), min(seg.shape[1], shape[1])
        out[i, :h, :w] = seg[:h, :w]
    return out


class PanopticFPNHead(nn.Module):
    """Semantic head of Panoptic FPN: `num_stuff_classes + 1` logits at stride 2^(start_level+2)."""

    def __init__(self, num_things_classes: int = 80, num_stuff_classes: int = 53, in_channels: int = 256,
                 inner_channels: int = 128, start_level: int = 0, end_level: int = 4,
                 norm_cfg: dict | None = None,
                 loss_seg: dict | None = None) -> None:
        super().__init__()
        self.num_things_classes, self.num_stuff_classes = num_things_classes, num_stuff_classes
        self.num_classes = num_stuff_classes + 1
        self.start_level, self.end_level = start_level, end_level
        self.seg_rescale_factor = 1 / 2 ** (start_level + 2)
        norm_cfg = norm_cfg or {"type": "GN", "num_groups": 32, "requires_grad": True}
        self.conv_upsample_layers = nn.ModuleList(
            ConvUpsample(in_channels, inner_channels, num_layers=max(i, 1), num_upsample=i, norm_cfg=norm_cfg)
            for i in range(start_level, end_level))
        self.conv_logits = nn.Conv2d(inner_channels, self.num_classes, 1)
        nn.init.normal_(self.conv_logits.weight, 0, 0.01)
        nn.init.zeros_(self.conv_logits.bias)
        self.loss_seg = build(loss_seg or {"type": "CrossEntropyLoss", "ignore_index": IGNORE_LABEL,
                                           "loss_weight": 1.0}, LOSSES, "loss_seg")

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """(N, num_stuff + 1, H/4, W/4) logits (for start_level 0)."""
        if len(feats) < self.end_level:
            raise ValueError(f"PanopticFPNHead: end_level {self.end_level} but only {len(feats)} feature levels")
        out = sum(layer(feats[self.start_level + i]) for i, layer in enumerate(self.conv_upsample_layers))
        return self.conv_logits(out)

    def targets(self, sem_seg: torch.Tensor) -> torch.Tensor:
        """Dataset labels -> head classes: stuff k -> k - num_things, any thing -> num_stuff, rest kept (255)."""
        things = sem_seg < self.num_things_classes
        stuff = (sem_seg >= self.num_things_classes) & (sem_seg < self.num_things_classes + self.num_stuff_classes)
        out = torch.where(stuff, sem_seg - self.num_things_classes, sem_seg)
        return torch.where(things, torch.full_like(sem_seg, self.num_stuff_classes), out)

    def loss(self, feats: Sequence[torch.Tensor], samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        logits = self(feats)
        shape = tuple(int(v) for v in samples[0].batch_input_shape)
        gt = pad_sem_seg(samples, shape, logits.device)[:, None].float()
        if self.seg_rescale_factor != 1.0:
            gt = F.interpolate(gt, scale_factor=self.seg_rescale_factor, mode="nearest")
        gt = self.targets(gt[:, 0].long())
        if logits.shape[-2:] != gt.shape[-2:]:
            logits = F.interpolate(logits, size=gt.shape[-2:], mode="bilinear", align_corners=False)
        pred = logits.permute(0, 2, 3, 1).reshape(-1, self.num_classes)
        return {"loss_seg": self.loss_seg(pred, gt.reshape(-1))}

    def predict(self, feats: Sequence[torch.Tensor], samples: Sequence[DetSample],
                rescale: bool = True) -> list[torch.Tensor]:
        """Per image (num_stuff + 1, h, w) logits: the input region (unflipped), then the original
        image size when `rescale`."""
        logits = F.interpolate(self(feats), size=tuple(int(v) for v in samples[0].batch_input_shape),
                               mode="bilinear", align_corners=False)
        out = []
        for i, s in enumerate(samples):
            h, w = s.input_shape
            seg = s.unflip_maps(logits[i, :, :h, :w])
            if rescale:
                seg = F.interpolate(seg[None], size=s.output_shape(True), mode="bilinear", align_corners=False)[0]
            out.append(seg)
        return out
