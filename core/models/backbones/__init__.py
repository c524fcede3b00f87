"""Backbones: feature extractors returning a tuple of multi-scale feature maps."""
from det.core.models.backbones.csp_darknet import CSPDarknet
from det.core.models.backbones.cspnext import CSPNeXt
from det.core.models.backbones.resnet import ResNet, ResNeXt
from det.core.models.backbones.swin import SwinTransformer
from det.core.models.backbones.timm_backbone import TimmBackbone

BACKBONES = {"ResNet": ResNet, "ResNeXt": ResNeXt, "CSPNeXt": CSPNeXt, "TimmBackbone": TimmBackbone}
BACKBONES["CSPDarknet"] = CSPDarknet
BACKBONES["SwinTransformer"] = SwinTransformer

__all__ = ["BACKBONES", "CSPDarknet", "CSPNeXt", "ResNeXt", "ResNet", "SwinTransformer", "TimmBackbone"]
