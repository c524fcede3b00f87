"""Backbones: feature extractors returning a tuple of multi-scale feature maps."""
from det.core.models.backbones.cspnext import CSPNeXt
from det.core.models.backbones.resnet import ResNet

BACKBONES = {"ResNet": ResNet, "CSPNeXt": CSPNeXt}

__all__ = ["BACKBONES", "CSPNeXt", "ResNet"]
