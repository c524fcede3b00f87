"""Detectors composed from backbone, neck and head."""
from det.core.models.detectors.single_stage import FCOS, YOLOX, RTMDet, RetinaNet, SingleStageDetector
from det.core.models.detectors.two_stage import CascadeRCNN, FasterRCNN, MaskRCNN, TwoStageDetector

DETECTORS = {"SingleStageDetector": SingleStageDetector, "RetinaNet": RetinaNet, "FCOS": FCOS, "RTMDet": RTMDet,
             "TwoStageDetector": TwoStageDetector, "FasterRCNN": FasterRCNN, "MaskRCNN": MaskRCNN,
             "CascadeRCNN": CascadeRCNN}
DETECTORS["YOLOX"] = YOLOX

__all__ = ["CascadeRCNN", "DETECTORS", "FCOS", "FasterRCNN", "MaskRCNN", "RTMDet", "RetinaNet", "SingleStageDetector",
           "TwoStageDetector", "YOLOX"]
