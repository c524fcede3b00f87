"""Backbones: feature extractors returning a tuple of multi-scale feature maps."""
from det.core.models.backbones.cspnext import CSPNeXt
from det.core.models.backbones.resnet import ResNet, ResNeXt

BACKBONES = {"ResNet": ResNet, "ResNeXt": ResNeXt, "CSPNeXt": CSPNeXt}

__all__ = ["BACKBONES", "CSPNeXt", "ResNeXt", "ResNet"]
