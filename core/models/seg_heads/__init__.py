"""Segmentation heads of panoptic models: semantic heads and panoptic fusion heads."""
from det.core.models.seg_heads.heuristic_fusion_head import HeuristicFusionHead
from det.core.models.seg_heads.panoptic_fpn_head import ConvUpsample, PanopticFPNHead

SEMANTIC_HEADS = {"PanopticFPNHead": PanopticFPNHead}
FUSION_HEADS = {"HeuristicFusionHead": HeuristicFusionHead}

__all__ = ["FUSION_HEADS", "ConvUpsample", "HeuristicFusionHead", "PanopticFPNHead", "SEMANTIC_HEADS"]
