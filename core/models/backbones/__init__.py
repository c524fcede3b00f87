"""Backbones: feature extractors returning a tuple of multi-scale feature maps."""
from det.core.models.backbones.csp_darknet import CSPDarknet
from det.core.models.backbones.cspnext import CSPNeXt
from det.core.models.backbones.resnet import ResNet

BACKBONES = {"ResNet": ResNet, "CSPNeXt": CSPNeXt}
BACKBONES["CSPDarknet"] = CSPDarknet

__all__ = ["BACKBONES", "CSPDarknet", "CSPNeXt", "ResNet"]
