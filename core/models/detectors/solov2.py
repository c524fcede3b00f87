"""SOLOv2: backbone -> FPN -> SOLOV2Head, a box-free single-stage instance segmenter (its head is
`mask_head`, as MMDetection's SingleStageInstanceSegmentor names it)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from det.core.config.build import at_path, build
from det.core.models.dense_heads import HEADS
from det.core.models.detectors.base import DetectorTrunk
from det.core.structures import DetSample, Instances


class SOLOv2(DetectorTrunk):
    """`loss`, `predict` (masks at the original image size, boxes enclosing them) and `forward`
    (raw head outputs of a normalised batch) as every det detector."""

    def __init__(self, backbone: dict, mask_head: dict, neck: dict | None = None,
                 data_preprocessor: dict | None = None, train_cfg: dict | None = None,
                 test_cfg: dict | None = None) -> None:
        super().__init__(backbone, neck, data_preprocessor)
        self.mask_head = build(mask_head, HEADS, "mask_head")
        with at_path("train_cfg"):
            self.mask_head.set_train_cfg(train_cfg)
        with at_path("test_cfg"):
            self.mask_head.set_test_cfg(test_cfg)
        self.num_classes = self.mask_head.num_classes

    def forward(self, x: torch.Tensor) -> tuple:
        return self.mask_head(self.extract_feat(x))

    def loss(self, inputs: torch.Tensor, samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        x, samples = self.data_preprocessor(inputs, samples)
        return self.mask_head.loss(self.extract_feat(x), samples)

    def predict(self, inputs: torch.Tensor, samples: Sequence[DetSample], rescale: bool = True) -> list[Instances]:
        x, samples = self.data_preprocessor(inputs, samples)
        return self.mask_head.predict(self.extract_feat(x), samples, rescale=rescale)
