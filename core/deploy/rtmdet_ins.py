"""The exportable forward of RTMDet-Ins: the dense post-processing of `graph.ExportedDense`
(threshold, top-`nms_pre`, decode, class-aware NMS, top-K) plus each kept instance's dynamic
mask kernels run on the prototypes in the graph. The head's grouped 1x1 convs take their
weights from the data, which ONNX Conv cannot; they export as the equivalent batched matmuls.

Extra output `mask_logits` (B, K, H/8, W/8): logits at the prototypes' resolution; det upsamples,
rescales, crops and thresholds them with the head's own `masks_from_logits`, as in PyTorch.
"""
from __future__ import annotations

import torch

from det.core.deploy.graph import ExportedDense, candidate_scores, padded_outputs


def is_rtmdet_ins(model) -> bool:
    from det.core.models.dense_heads.rtmdet_ins_head import RTMDetInsSepBNHead

    return isinstance(getattr(model, "bbox_head", None), RTMDetInsSepBNHead)


class ExportedRTMDetIns(ExportedDense):
    def __init__(self, model, imgsz: tuple[int, int]) -> None:
        super().__init__(model, imgsz, nms=True)
        gen = model.bbox_head.prior_generator
        for i, p in enumerate(gen.grid_priors(self.featmap_sizes, device=torch.device("cpu"), with_stride=True)):
            self.register_buffer(f"spriors{i}", p.float(), persistent=False)

    def forward(self, images: torch.Tensor, image_sizes: torch.Tensor | None = None):
        cls, reg, ker, mask_feat = self.model.bbox_head(self.model.extract_feat(images))
        results = [self._instance(cls, reg, ker, mask_feat[b], b, image_sizes[b]) for b in range(images.shape[0])]
        return tuple(torch.stack(r) for r in zip(*results))

    def _instance(self, cls, reg, ker, mask_feat: torch.Tensor, b: int, size: torch.Tensor):
        """RTMDetInsSepBNHead._predict_one in input-image pixels (no rescale)."""
        head, cfg = self.model.bbox_head, self.model.bbox_head.test_cfg
        boxes, scores, kernels, priors = [], [], [], []
        for lv in range(len(cls)):
            s = cls[lv][b].permute(1, 2, 0).reshape(-1, head.num_classes).sigmoid()
            scores.append(candidate_scores(s.float(), cfg.score_thr, cfg.nms_pre))
            pri = getattr(self, f"spriors{lv}")
            dist = reg[lv][b].permute(1, 2, 0).reshape(-1, 4)
            boxes.append(head.bbox_coder.decode(pri[:, :2], dist, max_shape=(size[0], size[1])))
            kernels.append(ker[lv][b].permute(1, 2, 0).reshape(-1, head.num_gen_params))
            priors.append(pri)
        boxes = torch.cat(boxes).float()
        kept = self._select(boxes, torch.cat(scores))
        logits = mask_logits(head, mask_feat, torch.cat(kernels)[kept[0]], torch.cat(priors)[kept[0]])
        return (*padded_outputs(boxes, *kept), logits)


def mask_logits(head, mask_feat: torch.Tensor, kernels: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """RTMDetInsSepBNHead.mask_logits with each dynamic 1x1 conv as a bmm: (K, H/8, W/8)."""
    n, (h, w) = priors.shape[0], mask_feat.shape[-2:]
    coord = head.prior_generator.single_level_grid_priors((h, w), 0, device=mask_feat.device).reshape(1, -1, 2)
    rel = (priors[:, None, :2] - coord).permute(0, 2, 1) / (priors[:, 2].reshape(-1, 1, 1) * 8)
    x = torch.cat([rel.to(mask_feat.dtype), mask_feat.reshape(1, -1, h * w).expand(n, -1, -1)], 1)
    params = torch.split(kernels, head.weight_nums + head.bias_nums, dim=1)
    layers = len(head.weight_nums)
    for i in range(layers):
        out = head.dyconv_channels if i < layers - 1 else 1
        x = torch.bmm(params[i].reshape(n, out, -1), x) + params[layers + i].reshape(n, out, 1)
        if i < layers - 1:
            x = x.relu()
    return x.reshape(n, h, w)
