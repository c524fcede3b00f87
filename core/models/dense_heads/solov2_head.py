"""SOLOv2 head (SOLOV2Head): box-free instance segmentation. Each pyramid level is resized to an
S x S grid; per cell a category branch predicts class scores and a kernel branch (CoordConv input)
predicts the weights of a dynamic 1x1 conv; a mask feature branch fuses P2-P5 (CoordConv on the
coarsest) into one stride-4 map, which each positive cell's kernel turns into its instance's mask.
Training: targets from `solov2_targets`, Dice loss on masks, Focal loss on classes. Testing:
score threshold, per-cell local maximum, masks, maskness-weighted scores, Matrix NMS; boxes are
derived from the final masks (MMDetection's SOLOv2 returns zero boxes)."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import build, check_keys, config_path
from det.core.errors import ConfigError
from det.core.models._ops import matrix_nms
from det.core.models.dense_heads.base import gt_of
from det.core.models.dense_heads.solov2_targets import ImageTargets, image_targets
from det.core.models.layers import ConvModule, bias_init_with_prob, normal_init
from det.core.models.losses import LOSSES
from det.core.models.roi_heads.standard_roi_head import gt_masks_of
from det.core.structures import DetSample, Instances, masks_to_boxes

DEFAULT_NORM = {"type": "GN", "num_groups": 32, "requires_grad": True}


def coord_feat(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) x and y coordinates from -1 to 1 (CoordConv's extra channels)."""
    b, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=x.device), torch.linspace(-1, 1, w, device=x.device),
                            indexing="ij")
    return torch.stack([xs, ys])[None].expand(b, -1, -1, -1).to(x.dtype)


class SOLOv2MaskFeat(nn.Module):
    """Levels start..end each brought to the first level's size (level i: i conv + 2x upsample
    steps, the last level with coordinates), summed, then a 1x1 conv to `out_channels`."""

    def __init__(self, in_channels: int, feat_channels: int, start_level: int, end_level: int, out_channels: int,
                 mask_stride: int = 4, norm_cfg: dict | None = None) -> None:
        super().__init__()
        if not 0 <= start_level <= end_level:
            raise ConfigError(f"{config_path('end_level')}: need 0 <= start_level <= end_level")
        self.start_level, self.end_level, self.mask_stride = start_level, end_level, mask_stride
        self.convs_all_levels = nn.ModuleList()
        for i in range(start_level, end_level + 1):
            seq = nn.Sequential()
            for j in range(max(i, 1)):
                chn = feat_channels if j > 0 else in_channels + 2 * int(0 < i == end_level)  # coords: last level
                seq.add_module(f"conv{j}", ConvModule(chn, feat_channels, 3, padding=1, norm_cfg=norm_cfg))
                if i > 0:
                    seq.add_module(f"upsample{j}", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.convs_all_levels.append(seq)
        self.conv_pred = ConvModule(feat_channels, out_channels, 1, norm_cfg=norm_cfg)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        inputs = feats[self.start_level:self.end_level + 1]
        out = self.convs_all_levels[0](inputs[0])
        for i in range(1, len(inputs)):
            x = inputs[i]
            if i == len(inputs) - 1:
                x = torch.cat([x, coord_feat(x)], 1)
            out = out + self.convs_all_levels[i](x)
        return self.conv_pred(out)


@dataclass
class SOLOTestSettings:
    """`model.test_cfg` of SOLOv2."""

    nms_pre: int = 500
    score_thr: float = 0.1
    mask_thr: float = 0.5
    filter_thr: float = 0.05
    kernel: str = "gaussian"
    sigma: float = 2.0
    max_per_img: int = 100

    @classmethod
    def parse(cls, cfg: dict | None) -> "SOLOTestSettings":
        cfg = check_keys(cfg, {f.name for f in dataclasses.fields(cls)})
        out = cls(**dict(cfg))
        if out.kernel not in ("gaussian", "linear"):
            raise ConfigError(f"{config_path('kernel')}: expected gaussian or linear, got {out.kernel!r}")
        return out


class SOLOV2Head(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, mask_feature_head: dict, feat_channels: int = 256,
                 stacked_convs: int = 4, strides: Sequence[int] = (4, 8, 16, 32, 64),
                 scale_ranges: Sequence[Sequence[float]] = ((8, 32), (16, 64), (32, 128), (64, 256), (128, 512)),
                 pos_scale: float = 0.2, num_grids: Sequence[int] = (40, 36, 24, 16, 12), cls_down_index: int = 0,
                 dynamic_conv_size: int = 1, loss_mask: dict | None = None, loss_cls: dict | None = None,
                 norm_cfg: dict | None = DEFAULT_NORM) -> None:
        super().__init__()
        if not len(strides) == len(scale_ranges) == len(num_grids):
            raise ConfigError(f"{config_path('num_grids')}: strides, scale_ranges and num_grids need one entry per level")
        self.num_classes, self.in_channels, self.feat_channels = num_classes, in_channels, feat_channels
        self.strides, self.scale_ranges, self.num_grids = list(strides), [tuple(r) for r in scale_ranges], list(num_grids)
        self.num_levels, self.pos_scale, self.cls_down_index = len(strides), pos_scale, cls_down_index
        self.dynamic_conv_size = dynamic_conv_size
        feat_cfg = check_keys(mask_feature_head, {"in_channels", "feat_channels", "start_level", "end_level",
                                                  "out_channels", "mask_stride", "norm_cfg"}, "mask_feature_head")
        feat_cfg = {**feat_cfg, "in_channels": in_channels}  # MMDetection sets it to the head's
        self.kernel_out_channels = feat_cfg["out_channels"] * dynamic_conv_size ** 2
        self.loss_mask = build(loss_mask or {"type": "DiceLoss", "use_sigmoid": True, "loss_weight": 3.0}, LOSSES,
                               "loss_mask")
        self.loss_cls = build(loss_cls or {"type": "FocalLoss", "use_sigmoid": True, "gamma": 2.0, "alpha": 0.25,
                                           "loss_weight": 1.0}, LOSSES, "loss_cls")
        self.kernel_convs, self.cls_convs = nn.ModuleList(), nn.ModuleList()
        for i in range(stacked_convs):
            self.kernel_convs.append(ConvModule(in_channels + 2 if i == 0 else feat_channels, feat_channels, 3,
                                                padding=1, norm_cfg=norm_cfg, bias=norm_cfg is None))
            self.cls_convs.append(ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3, padding=1,
                                             norm_cfg=norm_cfg, bias=norm_cfg is None))
        self.conv_cls = nn.Conv2d(feat_channels, num_classes, 3, padding=1)
        self.conv_kernel = nn.Conv2d(feat_channels, self.kernel_out_channels, 3, padding=1)
        self.mask_feature_head = SOLOv2MaskFeat(**feat_cfg)
        self.mask_stride = self.mask_feature_head.mask_stride
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, std=0.01)
        normal_init(self.conv_cls, std=0.01, bias=bias_init_with_prob(0.01))
        self.test_cfg = SOLOTestSettings()

    def set_train_cfg(self, train_cfg: dict | None) -> None:
        check_keys(train_cfg, set())  # SOLOv2 assigns in the head: nothing to set

    def set_test_cfg(self, test_cfg: dict | None) -> None:
        self.test_cfg = SOLOTestSettings.parse(test_cfg)

    def resize_feats(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The first level halved, the last brought to the previous level's size."""
        out = list(feats)
        out[0] = F.interpolate(feats[0], scale_factor=0.5, mode="bilinear")
        out[-1] = F.interpolate(feats[-1], size=feats[-2].shape[-2:], mode="bilinear")
        return out

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Per level: kernels (B, E, S, S) and class logits (B, C, S, S); and the mask features
        (B, E, H/4, W/4)."""
        if len(feats) != self.num_levels:
            raise ConfigError(f"{config_path('num_grids')}: the head has {self.num_levels} levels, the neck gives "
                              f"{len(feats)}")
        mask_feats = self.mask_feature_head(feats)
        kernels, logits = [], []
        for x, num_grid in zip(self.resize_feats(feats), self.num_grids):
            x = torch.cat([x, coord_feat(x)], 1)
            k = F.interpolate(x, size=num_grid, mode="bilinear", align_corners=False)
            c = k[:, :-2].contiguous()
            for conv in self.kernel_convs:
                k = conv(k)
            for conv in self.cls_convs:
                c = conv(c)
            kernels.append(self.conv_kernel(k))
            logits.append(self.conv_cls(c))
        return kernels, logits, mask_feats

    def dynamic_masks(self, mask_feats: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        """(N, h, w) mask logits of N kernels (N, E * k * k) on one image's (E, H, W) features."""
        k = self.dynamic_conv_size
        if kernels.size(0) == 0:
            return mask_feats.new_zeros((0, mask_feats.size(-2) - k + 1, mask_feats.size(-1) - k + 1))
        return F.conv2d(mask_feats[None], kernels.reshape(kernels.size(0), -1, k, k))[0]

    # -- training ---------------------------------------------------------------------------
    def targets(self, samples: Sequence[DetSample], feat_size: tuple[int, int],
                device: torch.device) -> list[ImageTargets]:
        out = []
        for s in samples:
            boxes, labels, _ = gt_of(s, device)
            masks = gt_masks_of(s, device) if len(labels) else torch.zeros((0, *feat_size), dtype=torch.bool,
                                                                           device=device)
            out.append(image_targets(boxes, labels, masks, feat_size, self.mask_stride, self.scale_ranges,
                                     self.num_grids, self.pos_scale, self.num_classes))
        return out

    def loss(self, feats: Sequence[torch.Tensor], samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        return self.loss_by_feat(*self(feats), samples=samples)

    def loss_by_feat(self, kernels: list[torch.Tensor], logits: list[torch.Tensor], mask_feats: torch.Tensor,
                     samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        targets = self.targets(samples, tuple(mask_feats.shape[-2:]), mask_feats.device)
        preds, gts = [], []
        for lvl, lvl_kernels in enumerate(kernels):
            for i, t in enumerate(targets):
                lt = t.levels[lvl]
                if lt.cells.numel():
                    preds.append(self.dynamic_masks(mask_feats[i], lvl_kernels[i].flatten(1)[:, lt.cells].t()))
                    gts.append(t.masks[lt.gt_idx])
        num_pos = sum(lt.num_pos for t in targets for lt in t.levels)
        if num_pos:
            loss_mask = self.loss_mask(torch.cat(preds), torch.cat(gts), reduction_override="none").sum() / num_pos
        else:
            loss_mask = mask_feats.sum() * 0
        labels = torch.cat([t.levels[lvl].labels for lvl in range(self.num_levels) for t in targets])
        flat = torch.cat([lg.permute(0, 2, 3, 1).reshape(-1, self.num_classes) for lg in logits])
        return {"loss_mask": loss_mask, "loss_cls": self.loss_cls(flat, labels, avg_factor=num_pos + 1)}

    # -- inference --------------------------------------------------------------------------
    def predict(self, feats: Sequence[torch.Tensor], samples: Sequence[DetSample],
                rescale: bool = True) -> list[Instances]:
        return self.predict_by_feat(*self(feats), samples=samples, rescale=rescale)

    def predict_by_feat(self, kernels: list[torch.Tensor], logits: list[torch.Tensor], mask_feats: torch.Tensor,
                        samples: Sequence[DetSample], rescale: bool = True) -> list[Instances]:
        scores = []
        for lg in logits:  # a cell counts only where it is the maximum of its 2 x 2 up-left window
            s = lg.sigmoid()
            peak = F.max_pool2d(s, 2, stride=1, padding=1)[:, :, :-1, :-1] == s
            scores.append((s * peak).permute(0, 2, 3, 1).reshape(s.size(0), -1, self.num_classes))
        scores = torch.cat(scores, 1)
        kernels = torch.cat([k.permute(0, 2, 3, 1).reshape(k.size(0), -1, self.kernel_out_channels) for k in kernels], 1)
        strides = torch.cat([mask_feats.new_full((g * g,), float(s)) for g, s in zip(self.num_grids, self.strides)])
        return [self._predict_one(scores[i], kernels[i], mask_feats[i], strides, s, rescale)
                for i, s in enumerate(samples)]

    def _predict_one(self, scores: torch.Tensor, kernels: torch.Tensor, mask_feats: torch.Tensor,
                     strides: torch.Tensor, sample: DetSample, rescale: bool) -> Instances:
        cfg = self.test_cfg
        cell, labels = (scores > cfg.score_thr).nonzero().unbind(1)
        scores = scores[cell, labels]
        probs = self.dynamic_masks(mask_feats, kernels[cell]).sigmoid()
        masks = probs > cfg.mask_thr
        area = masks.sum((1, 2)).float()
        keep = area > strides[cell]
        probs, masks, area, scores, labels = probs[keep], masks[keep], area[keep], scores[keep], labels[keep]
        scores = scores * (probs * masks).sum((1, 2)) / area  # maskness
        scores, labels, _, idx = matrix_nms(masks, labels, scores, area, cfg.nms_pre, cfg.max_per_img, cfg.kernel,
                                            cfg.sigma, cfg.filter_thr)
        final = self.full_size_masks(probs[idx], sample, rescale)
        return Instances(bboxes=masks_to_boxes(final), labels=labels, scores=scores, masks=final)

    def full_size_masks(self, probs: torch.Tensor, sample: DetSample, rescale: bool) -> torch.Tensor:
        """(N, H/4, W/4) probabilities -> (N, h, w) binary masks of the original image (of the
        input with `rescale` false): upsampled to the input, cropped to the image, resized."""
        h, w = sample.output_shape(rescale)
        if probs.size(0) == 0:
            return torch.zeros((0, h, w), dtype=torch.bool, device=probs.device)
        ih, iw = sample.input_shape
        up = (probs.size(-2) * self.mask_stride, probs.size(-1) * self.mask_stride)
        x = F.interpolate(probs[None], size=up, mode="bilinear", align_corners=False)[..., :ih, :iw]
        if sample.flip_direction:
            x = sample.unflip_maps(x)
        if (h, w) != (ih, iw):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        return x[0] > self.test_cfg.mask_thr
