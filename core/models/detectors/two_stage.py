"""Two-stage detectors: data preprocessor -> backbone -> neck -> RPN proposals -> RoI head.

`train_cfg` = {rpn: assigner/sampler of the RPN, rpn_proposal: proposals made for the RoI head
during training, rcnn: assigner/sampler (a list for cascades)}; `test_cfg` = {rpn, rcnn}
(MMDetection's layout).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from det.core.config.build import at_path, build, check_keys
from det.core.models.dense_heads import HEADS
from det.core.models.detectors.base import DetectorTrunk
from det.core.models.dense_heads.rpn_head import ProposalSettings
from det.core.models.roi_heads import ROI_HEADS
from det.core.structures import DetSample, Instances


class TwoStageDetector(DetectorTrunk):
    """The detector interface of docs/architecture.md (`loss`, `predict`, `forward`)."""

    def __init__(self, backbone: dict, rpn_head: dict, roi_head: dict, neck: dict | None = None,
                 data_preprocessor: dict | None = None, train_cfg: dict | None = None,
                 test_cfg: dict | None = None) -> None:
        super().__init__(backbone, neck, data_preprocessor)
        self.rpn_head = build(rpn_head, HEADS, "rpn_head")
        self.roi_head = build(roi_head, ROI_HEADS, "roi_head")
        with at_path("train_cfg"):
            train_cfg = check_keys(train_cfg, {"rpn", "rpn_proposal", "rcnn"}, "")
            with at_path("rpn"):
                self.rpn_head.set_train_cfg(train_cfg.get("rpn"))
            with at_path("rpn_proposal"):
                self.proposal_cfg = ProposalSettings.parse(
                    train_cfg.get("rpn_proposal") or {"nms_pre": 2000, "max_per_img": 1000,
                                                      "nms": {"type": "nms", "iou_threshold": 0.7}})
            if "rcnn" in train_cfg:
                with at_path("rcnn"):
                    self.roi_head.set_train_cfg(train_cfg["rcnn"])
        with at_path("test_cfg"):
            test_cfg = check_keys(test_cfg, {"rpn", "rcnn"}, "")
            with at_path("rpn"):
                self.rpn_head.set_test_cfg(test_cfg.get("rpn"))
            if "rcnn" in test_cfg:
                with at_path("rcnn"):
                    self.roi_head.set_test_cfg(test_cfg["rcnn"])
        self.num_classes = self.roi_head.num_classes

    def forward(self, x: torch.Tensor) -> tuple:
        """RPN outputs and RoI head outputs for the test-time proposals of a normalised batch."""
        return self.forward_features(self.extract_feat(x), tuple(x.shape[-2:]))

    def forward_features(self, feats: Sequence[torch.Tensor], shape: tuple[int, int]) -> tuple:
        """`forward` on extracted features of a batch of input size `shape`."""
        rpn_outs = self.rpn_head(feats)
        h, w = shape
        samples = [DetSample(img_shape=(h, w), batch_input_shape=(h, w)) for _ in range(feats[0].size(0))]
        proposals = self.rpn_head.predict_by_feat(*rpn_outs, samples=samples)
        return rpn_outs, self.roi_head(feats, [p.bboxes for p in proposals])

    def loss(self, inputs: torch.Tensor, samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        x, samples = self.data_preprocessor(inputs, samples)
        return self.loss_features(self.extract_feat(x), samples)

    def loss_features(self, feats: Sequence[torch.Tensor], samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        """RPN and RoI head losses on extracted features (preprocessed samples)."""
        rpn_outs = self.rpn_head(feats)
        losses = self.rpn_head.loss_by_feat(*rpn_outs, samples=samples)
        proposals = self.rpn_head.predict_by_feat(*rpn_outs, samples=samples, cfg=self.proposal_cfg)
        losses.update(self.roi_head.loss(feats, proposals, samples))
        return losses

    def predict(self, inputs: torch.Tensor, samples: Sequence[DetSample], rescale: bool = True) -> list[Instances]:
        x, samples = self.data_preprocessor(inputs, samples)
        return self.predict_features(self.extract_feat(x), samples, rescale)

    def predict_features(self, feats: Sequence[torch.Tensor], samples: Sequence[DetSample],
                         rescale: bool = True) -> list[Instances]:
        proposals = self.rpn_head.predict_by_feat(*self.rpn_head(feats), samples=samples)
        return self.roi_head.predict(feats, proposals, samples, rescale=rescale)


class FasterRCNN(TwoStageDetector):
    """Faster R-CNN (ResNet + FPN + RPNHead + StandardRoIHead with a box head)."""


class MaskRCNN(TwoStageDetector):
    """Mask R-CNN (Faster R-CNN + an FCN mask head in the RoI head)."""


class CascadeRCNN(TwoStageDetector):
    """Cascade R-CNN (RPN + CascadeRoIHead)."""
