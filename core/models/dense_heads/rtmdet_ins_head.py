"""RTMDet-Ins head (RTMDetInsSepBNHead): RTMDet's box head plus, per level, a kernel tower that
predicts the weights of a small dynamic conv net per instance, and a mask feature branch
(MaskFeatModule) shared by all instances. An instance's mask logits are its dynamic convs applied
to the prototypes concatenated with coordinates relative to its prior; Dice loss at stride 4.
As MMDetection's, the box tower reuses the class tower's modules (`reg_convs` is `cls_convs`),
so checkpoints carry both names for the same tensors."""
from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from det.core.config.build import build
from det.core.models._ops import batched_nms
from det.core.models.dense_heads.base import TestSettings, reduce_mean
from det.core.models.dense_heads.rtmdet_head import RTMDetSepBNHead
from det.core.models.layers import ConvModule, bias_init_with_prob, normal_init
from det.core.models.losses import LOSSES
from det.core.models.roi_heads.standard_roi_head import gt_masks_of
from det.core.structures import DetSample, Instances, flip_boxes

DEFAULT_NORM = {"type": "BN"}


class MaskFeatModule(nn.Module):
    """Levels resized to the finest and concatenated, a 1x1 fusion conv, stacked 3x3 convs, then a
    1x1 projection to `num_prototypes` channels."""

    def __init__(self, in_channels: int, feat_channels: int = 256, stacked_convs: int = 4, num_levels: int = 3,
                 num_prototypes: int = 8, act_cfg: dict | None = None, norm_cfg: dict | None = None) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.fusion_conv = nn.Conv2d(num_levels * in_channels, in_channels, 1)
        self.stacked_convs = nn.Sequential(*[
            ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3, padding=1, norm_cfg=norm_cfg,
                       act_cfg=act_cfg) for i in range(stacked_convs)])
        self.projection = nn.Conv2d(feat_channels, num_prototypes, 1)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        fused = [feats[0]] + [F.interpolate(feats[i], size=size, mode="bilinear") for i in range(1, self.num_levels)]
        return self.projection(self.stacked_convs(self.fusion_conv(torch.cat(fused, 1))))


@dataclass
class InsTestSettings(TestSettings):
    mask_thr_binary: float = 0.5


class RTMDetInsSepBNHead(RTMDetSepBNHead):
    def __init__(self, num_classes: int, in_channels: int, feat_channels: int = 256, stacked_convs: int = 2,
                 share_conv: bool = True, pred_kernel_size: int = 1, num_prototypes: int = 8,
                 dyconv_channels: int = 8, num_dyconvs: int = 3, mask_loss_stride: int = 4,
                 norm_cfg: dict | None = None, act_cfg: dict | None = None, anchor_generator: dict | None = None,
                 bbox_coder: dict | None = None, loss_cls: dict | None = None, loss_bbox: dict | None = None,
                 loss_mask: dict | None = None, train_cfg: dict | None = None, test_cfg: dict | None = None) -> None:
        norm_cfg = norm_cfg or DEFAULT_NORM
        act_cfg = act_cfg or {"type": "SiLU", "inplace": True}
        super().__init__(num_classes, in_channels, feat_channels, stacked_convs, share_conv, False, pred_kernel_size,
                         False, norm_cfg, act_cfg, anchor_generator, bbox_coder, loss_cls, loss_bbox, train_cfg,
                         test_cfg)
        self.num_prototypes, self.dyconv_channels, self.mask_loss_stride = num_prototypes, dyconv_channels, mask_loss_stride
        self.weight_nums, self.bias_nums = self._dynamic_sizes(num_dyconvs)
        self.num_gen_params = sum(self.weight_nums) + sum(self.bias_nums)
        self.loss_mask = build(loss_mask or {"type": "DiceLoss", "loss_weight": 2.0, "eps": 5e-6,
                                             "reduction": "mean"}, LOSSES, "loss_mask")
        levels = self.prior_generator.num_levels
        pad = pred_kernel_size // 2
        self.reg_convs = self.cls_convs  # MMDetection's RTMDetInsSepBNHead builds it this way
        self.kernel_convs = nn.ModuleList(nn.ModuleList(
            ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3, padding=1, norm_cfg=norm_cfg,
                       act_cfg=act_cfg) for i in range(stacked_convs)) for _ in range(levels))
        self.rtm_kernel = nn.ModuleList(nn.Conv2d(feat_channels, self.num_gen_params, pred_kernel_size, padding=pad)
                                        for _ in range(levels))
        self.mask_head = MaskFeatModule(in_channels, feat_channels, 4, levels, num_prototypes, act_cfg, norm_cfg)
        self._init_weights()

    def _dynamic_sizes(self, num_dyconvs: int) -> tuple[list[int], list[int]]:
        """Weights and biases of the dynamic convs: (prototypes + 2 coords) -> dyconv ... -> 1."""
        c = self.dyconv_channels
        weights, biases = [], []
        for i in range(num_dyconvs):
            last = i == num_dyconvs - 1
            cin = self.num_prototypes + 2 if i == 0 else c
            weights.append(cin * (1 if last else c))
            biases.append(1 if last else c)
        return weights, biases

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, std=0.01)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for cls, reg in zip(self.rtm_cls, self.rtm_reg):
            normal_init(cls, std=0.01, bias=bias_init_with_prob(0.01))
            normal_init(reg, std=0.01, bias=1.0)

    def set_test_cfg(self, test_cfg: dict | None) -> None:
        self.test_cfg = InsTestSettings.parse(test_cfg)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple:
        """Per level: class logits, (l, t, r, b) distances in pixels (ReLU), dynamic kernels; and
        the prototypes (B, num_prototypes, H/8, W/8)."""
        mask_feat = self.mask_head(feats)
        cls_scores, bbox_preds, kernels = [], [], []
        for idx, x in enumerate(feats):
            c, r, k = x, x, x
            for layer in self.cls_convs[idx]:
                c = layer(c)
            for layer in self.kernel_convs[idx]:
                k = layer(k)
            for layer in self.reg_convs[idx]:
                r = layer(r)
            cls_scores.append(self.rtm_cls[idx](c))
            kernels.append(self.rtm_kernel[idx](k))
            bbox_preds.append(F.relu(self.rtm_reg[idx](r)) * self.prior_generator.strides[idx][0])
        return cls_scores, bbox_preds, kernels, mask_feat

    def loss_by_feat(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                     kernel_preds: list[torch.Tensor], mask_feat: torch.Tensor,
                     samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        priors, cls, decoded = self.flatten_outputs(cls_scores, bbox_preds)
        sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        *targets, assigned = self.get_targets(priors, cls, decoded, sizes, samples)
        losses = self.box_losses(cls, decoded, *targets)
        b = cls.size(0)
        kernels = torch.cat([k.permute(0, 2, 3, 1).reshape(b, -1, self.num_gen_params) for k in kernel_preds], 1)
        losses["loss_mask"] = self.mask_loss(mask_feat, kernels, priors, assigned, samples)
        return losses

    def mask_loss(self, mask_feat: torch.Tensor, kernels: torch.Tensor, priors: torch.Tensor,
                  assigned: list[tuple[torch.Tensor, torch.Tensor]], samples: Sequence[DetSample]) -> torch.Tensor:
        """Dice loss of the positives' masks upsampled to stride `mask_loss_stride` against the gt
        masks sampled at that stride (pixel centres), averaged over positives."""
        logits, gts = [], []
        hb, wb = mask_feat.shape[-2] * self.stride0, mask_feat.shape[-1] * self.stride0
        for i, (pos, gt_idx) in enumerate(assigned):
            logits.append(self.mask_logits(mask_feat[i], kernels[i, pos], priors[pos]))
            masks = gt_masks_of(samples[i], mask_feat.device) if pos.numel() else None
            if masks is None or masks.numel() == 0:
                gts.append(mask_feat.new_zeros((0, hb, wb), dtype=torch.bool))
                continue
            full = masks.new_zeros((masks.size(0), hb, wb))
            h, w = min(masks.shape[-2], hb), min(masks.shape[-1], wb)
            full[:, :h, :w] = masks[:, :h, :w]
            gts.append(full[gt_idx])
        logit, gt = torch.cat(logits), torch.cat(gts)
        num_pos = reduce_mean(mask_feat.new_tensor([float(logit.size(0))])).clamp(min=1).item()
        if logit.size(0) == 0:
            return mask_feat.sum() * 0
        s = self.mask_loss_stride
        logit = F.interpolate(logit[None], scale_factor=self.stride0 // s, mode="bilinear", align_corners=False)[0]
        return self.loss_mask(logit, gt[:, s // 2::s, s // 2::s], avg_factor=num_pos)

    @property
    def stride0(self) -> int:
        return int(self.prior_generator.strides[0][0])

    def mask_logits(self, mask_feat: torch.Tensor, kernels: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
        """(N, H, W) logits at the prototypes' resolution for N instances (priors (N, 4) x, y, sw, sh)."""
        n = priors.size(0)
        h, w = mask_feat.shape[-2:]
        if n == 0:
            return mask_feat.new_zeros((0, h, w))
        coord = self.prior_generator.single_level_grid_priors((h, w), 0, device=mask_feat.device).reshape(1, -1, 2)
        rel = (priors[:, None, :2] - coord).permute(0, 2, 1) / (priors[:, 2].reshape(-1, 1, 1) * 8)
        x = torch.cat([rel.reshape(n, 2, h, w).to(mask_feat.dtype), mask_feat.expand(n, -1, -1, -1)], 1)
        x = x.reshape(1, -1, h, w)
        params = torch.split(kernels, self.weight_nums + self.bias_nums, dim=1)
        layers = len(self.weight_nums)
        for i in range(layers):
            out = self.dyconv_channels if i < layers - 1 else 1
            weight = params[i].reshape(n * out, -1, 1, 1)
            x = F.conv2d(x, weight, params[layers + i].reshape(n * out), groups=n)
            if i < layers - 1:
                x = F.relu(x)
        return x.reshape(n, h, w)

    def predict_by_feat(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                        kernel_preds: list[torch.Tensor], mask_feat: torch.Tensor, samples: Sequence[DetSample],
                        rescale: bool = True) -> list[Instances]:
        sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        priors = self.prior_generator.grid_priors(sizes, device=cls_scores[0].device, with_stride=True)
        results = []
        for i, sample in enumerate(samples):
            per_level = [(cls_scores[lv][i], bbox_preds[lv][i], kernel_preds[lv][i]) for lv in range(len(sizes))]
            results.append(self._predict_one(per_level, priors, mask_feat[i], sample, rescale))
        return results

    def _candidates(self, per_level: list, priors: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Per level: scores over score_thr, the top nms_pre; -> (scores, labels, distances,
        priors, kernels) of all levels."""
        cfg, out = self.test_cfg, []
        for (cls, reg, ker), pri in zip(per_level, priors):
            scores = cls.permute(1, 2, 0).reshape(-1, self.num_classes).sigmoid()
            flat = scores.reshape(-1)
            idx = (flat > cfg.score_thr).nonzero().squeeze(1)
            flat, order = flat[idx].sort(descending=True)
            if cfg.nms_pre > 0:
                flat, order = flat[: cfg.nms_pre], order[: cfg.nms_pre]
            idx = idx[order]
            p = idx // self.num_classes
            out.append((flat, idx % self.num_classes, reg.permute(1, 2, 0).reshape(-1, 4)[p], pri[p],
                        ker.permute(1, 2, 0).reshape(-1, self.num_gen_params)[p]))
        return tuple(torch.cat(parts) for parts in zip(*out))

    def _predict_one(self, per_level: list, priors: list[torch.Tensor], mask_feat: torch.Tensor,
                     sample: DetSample, rescale: bool) -> Instances:
        cfg = self.test_cfg
        scores, labels, dist, pri, kernels = self._candidates(per_level, priors)
        boxes = self.bbox_coder.decode(pri[:, :2], dist, max_shape=sample.input_shape).float()
        if rescale:
            boxes = sample.unscale_boxes(boxes)
        if cfg.min_bbox_size >= 0:
            wh = boxes[:, 2:] - boxes[:, :2]
            ok = (wh[:, 0] > cfg.min_bbox_size) & (wh[:, 1] > cfg.min_bbox_size)
            boxes, scores, labels, pri, kernels = boxes[ok], scores[ok], labels[ok], pri[ok], kernels[ok]
        if boxes.numel():
            keep = batched_nms(boxes, scores, labels, cfg.iou_threshold)[: cfg.max_per_img]
            boxes, scores, labels, pri, kernels = boxes[keep], scores[keep], labels[keep], pri[keep], kernels[keep]
        masks = self._masks(mask_feat, kernels, pri, sample, rescale)
        if rescale and sample.flip_direction:
            h, w = sample.output_shape()
            boxes = flip_boxes(boxes, int(h), int(w), sample.flip_direction)
        return Instances(bboxes=boxes, labels=labels, scores=scores.float(), masks=masks)

    def _masks(self, mask_feat: torch.Tensor, kernels: torch.Tensor, pri: torch.Tensor, sample: DetSample,
               rescale: bool) -> torch.Tensor:
        """Binary masks of the kept instances at the original image size (input size without rescale)."""
        h, w = sample.output_shape(rescale)
        if pri.size(0) == 0:
            return torch.zeros((0, int(h), int(w)), dtype=torch.bool, device=mask_feat.device)
        return self.masks_from_logits(self.mask_logits(mask_feat, kernels, pri), sample, rescale)

    def masks_from_logits(self, logits: torch.Tensor, sample: DetSample, rescale: bool) -> torch.Tensor:
        """(N, H/8, W/8) prototype-resolution logits -> (N, h, w) binary masks (original image
        size with `rescale`); det export's RTMDet-Ins outputs go through here too."""
        h, w = sample.output_shape(rescale)
        logits = F.interpolate(logits[None], scale_factor=self.stride0, mode="bilinear")
        if sample.flip_direction:
            ih, iw = sample.input_shape
            logits[..., :ih, :iw] = sample.unflip_maps(logits[..., :ih, :iw])
        if rescale:
            sw, sh = sample.scale_factor
            # MMDetection scales the height by 1 / w_scale and the width by 1 / h_scale
            size = [math.ceil(logits.shape[-2] / sw), math.ceil(logits.shape[-1] / sh)]
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        logits = logits[..., : int(h), : int(w)]
        return logits.sigmoid()[0] > self.test_cfg.mask_thr_binary
