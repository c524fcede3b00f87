"""Detectors composed from backbone, neck and head."""
from det.core.models.detectors.single_stage import FCOS, RTMDet, RetinaNet, SingleStageDetector

DETECTORS = {"SingleStageDetector": SingleStageDetector, "RetinaNet": RetinaNet, "FCOS": FCOS, "RTMDet": RTMDet}

__all__ = ["DETECTORS", "FCOS", "RTMDet", "RetinaNet", "SingleStageDetector"]
