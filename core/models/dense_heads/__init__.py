"""Single-stage (dense) detection heads."""
from det.core.models.dense_heads.base import DenseHead, TestSettings
from det.core.models.dense_heads.fcos_head import FCOSHead
from det.core.models.dense_heads.retina_head import RetinaHead
from det.core.models.dense_heads.rpn_head import RPNHead
from det.core.models.dense_heads.rtmdet_head import RTMDetSepBNHead
from det.core.models.dense_heads.rtmdet_ins_head import RTMDetInsSepBNHead
from det.core.models.dense_heads.solov2_head import SOLOV2Head
from det.core.models.dense_heads.yolox_head import YOLOXHead

HEADS = {"RetinaHead": RetinaHead, "FCOSHead": FCOSHead, "RTMDetSepBNHead": RTMDetSepBNHead,
         "RPNHead": RPNHead}
HEADS["YOLOXHead"] = YOLOXHead
HEADS["RTMDetInsSepBNHead"] = RTMDetInsSepBNHead
HEADS["SOLOV2Head"] = SOLOV2Head

__all__ = ["DenseHead", "FCOSHead", "HEADS", "RPNHead", "RTMDetInsSepBNHead", "RTMDetSepBNHead", "RetinaHead",
           "SOLOV2Head", "TestSettings", "YOLOXHead"]
