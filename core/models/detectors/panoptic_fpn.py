"""Panoptic FPN (MMDetection's PanopticFPN / TwoStagePanopticSegmentor): Mask R-CNN plus a
semantic FPN head over stuff classes and one 'things' class, fused by HeuristicFusionHead into
one `PanopticPrediction` per image. `test_cfg.panoptic` = {mask_overlap, stuff_area_limit}."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from det.core.config.build import build, check_keys
from det.core.models.detectors.two_stage import TwoStageDetector
from det.core.models.seg_heads import FUSION_HEADS, SEMANTIC_HEADS
from det.core.structures import DetSample
from det.core.structures.panoptic import PanopticPrediction


class PanopticFPN(TwoStageDetector):
    """Mask R-CNN + PanopticFPNHead (`semantic_head`) + HeuristicFusionHead (`panoptic_fusion_head`)."""

    task = "panoptic"

    def __init__(self, backbone: dict, rpn_head: dict, roi_head: dict, semantic_head: dict,
                 panoptic_fusion_head: dict, neck: dict | None = None, data_preprocessor: dict | None = None,
                 train_cfg: dict | None = None, test_cfg: dict | None = None) -> None:
        test_cfg = dict(check_keys(test_cfg, {"rpn", "rcnn", "panoptic"}, "test_cfg"))
        panoptic_cfg = test_cfg.pop("panoptic", None)
        super().__init__(backbone, rpn_head, roi_head, neck, data_preprocessor, train_cfg, test_cfg)
        self.semantic_head = build(semantic_head, SEMANTIC_HEADS, "semantic_head")
        self.panoptic_fusion_head = build(panoptic_fusion_head, FUSION_HEADS, "panoptic_fusion_head",
                                          test_cfg=panoptic_cfg)
        self.num_things_classes = self.panoptic_fusion_head.num_things_classes
        self.num_stuff_classes = self.panoptic_fusion_head.num_stuff_classes
        self.num_classes = self.panoptic_fusion_head.num_classes

    def forward_features(self, feats: Sequence[torch.Tensor], shape: tuple[int, int]) -> tuple:
        """RPN and RoI head outputs (TwoStageDetector) plus the semantic logits."""
        return super().forward_features(feats, shape) + (self.semantic_head(feats),)

    def loss_features(self, feats: Sequence[torch.Tensor], samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        losses = super().loss_features(feats, samples)
        losses.update(self.semantic_head.loss(feats, samples))
        return losses

    def predict(self, inputs: torch.Tensor, samples: Sequence[DetSample],
                rescale: bool = True) -> list[PanopticPrediction]:
        x, samples = self.data_preprocessor(inputs, samples)
        feats = self.extract_feat(x)
        instances = self.predict_features(feats, samples, rescale)
        seg_logits = self.semantic_head.predict(feats, samples, rescale)
        preds = self.panoptic_fusion_head.predict(instances, seg_logits)
        for pred, inst in zip(preds, instances):
            pred.instances = inst  # the Mask R-CNN result behind the things (drawn by det infer)
        return preds
