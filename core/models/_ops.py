"""The one place where models import detection ops (compiled in det.ops)."""
from det.ops import batched_nms, batched_soft_nms, bbox_overlaps, matrix_nms, ms_deform_attn, sigmoid_focal_loss

__all__ = ["batched_nms", "batched_soft_nms", "bbox_overlaps", "matrix_nms", "ms_deform_attn", "sigmoid_focal_loss"]
