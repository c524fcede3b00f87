"""Detectors composed from backbone, neck and head."""
from det.core.models.detectors.deformable_detr import DeformableDETR
from det.core.models.detectors.detr import DETR
from det.core.models.detectors.dino import DINO
from det.core.models.detectors.panoptic_fpn import PanopticFPN
from det.core.models.detectors.solov2 import SOLOv2
from det.core.models.detectors.single_stage import FCOS, YOLOX, RTMDet, RetinaNet, SingleStageDetector
from det.core.models.detectors.two_stage import CascadeRCNN, FasterRCNN, MaskRCNN, TwoStageDetector

DETECTORS = {"SingleStageDetector": SingleStageDetector, "RetinaNet": RetinaNet, "FCOS": FCOS, "RTMDet": RTMDet,
             "TwoStageDetector": TwoStageDetector, "FasterRCNN": FasterRCNN, "MaskRCNN": MaskRCNN,
             "CascadeRCNN": CascadeRCNN}
DETECTORS["DETR"] = DETR
DETECTORS["DeformableDETR"] = DeformableDETR
DETECTORS["DINO"] = DINO
DETECTORS["YOLOX"] = YOLOX
DETECTORS["SOLOv2"] = SOLOv2
DETECTORS["PanopticFPN"] = PanopticFPN

__all__ = ["CascadeRCNN", "DETECTORS", "DETR", "DINO", "DeformableDETR", "FCOS", "FasterRCNN", "MaskRCNN", "PanopticFPN",
           "RTMDet", "RetinaNet", "SOLOv2", "SingleStageDetector", "TwoStageDetector", "YOLOX"]
