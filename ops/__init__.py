"""Compiled detection ops (torch.ops.det.*) and their typed Python wrappers.

Importing det.ops loads the C++ extension det.ops._C and fails with one line naming the
rebuild command when it is missing or was built from other sources (see docs/ops.md).
"""
from det.ops._ext import _C  # noqa: F401  - first: fails early on a missing/stale build
from det.ops.bbox_overlaps import bbox_overlaps
from det.ops.coco_eval import coco_accumulate
from det.ops.focal_loss import sigmoid_focal_loss
from det.ops.matrix_nms import matrix_nms
from det.ops.ms_deform_attn import ms_deform_attn
from det.ops.nms import batched_nms, batched_soft_nms, nms, soft_nms
from det.ops.roi_align import roi_align
from det.ops.wbf import weighted_boxes_fusion, weighted_boxes_fusion_batch

__all__ = [
    "batched_nms",
    "batched_soft_nms",
    "bbox_overlaps",
    "coco_accumulate",
    "matrix_nms",
    "ms_deform_attn",
    "nms",
    "roi_align",
    "sigmoid_focal_loss",
    "soft_nms",
    "weighted_boxes_fusion",
    "weighted_boxes_fusion_batch",
]
