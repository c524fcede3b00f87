"""Single-stage detectors: data preprocessor -> backbone -> neck -> dense head."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from det.core.config.build import at_path, build
from det.core.models.dense_heads import HEADS
from det.core.models.detectors.base import DetectorTrunk
from det.core.structures import DetSample, Instances


class SingleStageDetector(DetectorTrunk):
    """The detector interface of docs/architecture.md:

    - `loss(inputs, samples)` -> dict of losses (keys starting with 'loss' are summed);
    - `predict(inputs, samples)` -> one `Instances` per image in original-image coordinates;
    - `forward(x)` -> raw head outputs for an already normalised float batch (flops, benchmarks).
    `inputs` are the loader's uint8 BGR batches; `data_preprocessor` runs inside loss/predict.
    """

    def __init__(self, backbone: dict, bbox_head: dict, neck: dict | None = None,
                 data_preprocessor: dict | None = None, train_cfg: dict | None = None,
                 test_cfg: dict | None = None) -> None:
        super().__init__(backbone, neck, data_preprocessor)
        self.attach_head(bbox_head, train_cfg, test_cfg)

    head_name = "bbox_head"  # the head's attribute and preset key (SOLOv2: mask_head)

    def attach_head(self, cfg: dict, train_cfg: dict | None, test_cfg: dict | None) -> None:
        """Build the head under `head_name` and give it the train/test settings."""
        head = build(cfg, HEADS, self.head_name)
        setattr(self, self.head_name, head)
        with at_path("train_cfg"):
            head.set_train_cfg(train_cfg)
        with at_path("test_cfg"):
            head.set_test_cfg(test_cfg)
        self.num_classes = head.num_classes

    @property
    def dense_head(self) -> torch.nn.Module:
        return getattr(self, self.head_name)

    def forward(self, x: torch.Tensor) -> tuple:
        return self.dense_head(self.extract_feat(x))

    def loss(self, inputs: torch.Tensor, samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        x, samples = self.data_preprocessor(inputs, samples)
        return self.dense_head.loss(self.extract_feat(x), samples)

    def predict(self, inputs: torch.Tensor, samples: Sequence[DetSample], rescale: bool = True) -> list[Instances]:
        x, samples = self.data_preprocessor(inputs, samples)
        return self.dense_head.predict(self.extract_feat(x), samples, rescale=rescale)


class RetinaNet(SingleStageDetector):
    """RetinaNet (ResNet + FPN + RetinaHead)."""


class FCOS(SingleStageDetector):
    """FCOS (ResNet + FPN + FCOSHead)."""


class RTMDet(SingleStageDetector):
    """RTMDet (CSPNeXt + CSPNeXtPAFPN + RTMDetSepBNHead)."""


class YOLOX(SingleStageDetector):
    """YOLOX (CSPDarknet + YOLOXPAFPN + YOLOXHead); `switch_stage()` turns on the L1 loss of
    YOLOX's last epochs (called by the trainer when it switches to `data.train.switch_pipeline`)."""

    def switch_stage(self) -> None:
        self.bbox_head.use_l1 = True
