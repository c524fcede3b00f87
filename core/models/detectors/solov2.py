"""SOLOv2: backbone -> FPN -> SOLOV2Head, a box-free single-stage instance segmenter (its head is
`mask_head`, as MMDetection's SingleStageInstanceSegmentor names it)."""
from __future__ import annotations

from det.core.models.detectors.base import DetectorTrunk
from det.core.models.detectors.single_stage import SingleStageDetector


class SOLOv2(SingleStageDetector):
    """`loss`, `predict` (masks at the original image size, boxes enclosing them) and `forward`
    (raw head outputs of a normalised batch) as every single-stage detector."""

    head_name = "mask_head"

    def __init__(self, backbone: dict, mask_head: dict, neck: dict | None = None,
                 data_preprocessor: dict | None = None, train_cfg: dict | None = None,
                 test_cfg: dict | None = None) -> None:
        DetectorTrunk.__init__(self, backbone, neck, data_preprocessor)
        self.attach_head(mask_head, train_cfg, test_cfg)
