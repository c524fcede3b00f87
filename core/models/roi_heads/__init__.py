"""RoI heads of two-stage detectors: RoI feature extraction, box heads, mask heads and the
standard / cascade heads that combine them."""
from det.core.models.roi_heads.bbox_head import Shared2FCBBoxHead
from det.core.models.roi_heads.cascade_roi_head import CascadeRoIHead
from det.core.models.roi_heads.mask_head import FCNMaskHead
from det.core.models.roi_heads.roi_extractor import SingleRoIExtractor, boxes_to_rois
from det.core.models.roi_heads.standard_roi_head import (BBOX_HEADS, MASK_HEADS, ROI_EXTRACTORS, StandardRoIHead,
                                                           multiclass_nms)

ROI_HEADS = {"StandardRoIHead": StandardRoIHead, "CascadeRoIHead": CascadeRoIHead}

__all__ = ["BBOX_HEADS", "CascadeRoIHead", "FCNMaskHead", "MASK_HEADS", "ROI_EXTRACTORS", "ROI_HEADS",
           "Shared2FCBBoxHead", "SingleRoIExtractor", "StandardRoIHead", "boxes_to_rois", "multiclass_nms"]
