"""Boxes, masks and the per-image sample record passed between data, models and evaluation."""
from det.core.structures.bitmap_masks import BitmapMasks
from det.core.structures.boxes import (
    box_area,
    box_overlaps,
    clip_boxes,
    cxcywh_to_xyxy,
    flip_boxes,
    masks_to_boxes,
    rescale_boxes,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)
from det.core.structures.masks import bitmap_to_rle, polygons_to_bitmap, polygons_to_rle, rle_to_bitmap
from det.core.structures.results import Instances
from det.core.structures.sample import DetSample

__all__ = [
    "BitmapMasks",
    "DetSample",
    "Instances",
    "bitmap_to_rle",
    "box_area",
    "box_overlaps",
    "clip_boxes",
    "cxcywh_to_xyxy",
    "flip_boxes",
    "masks_to_boxes",
    "polygons_to_bitmap",
    "polygons_to_rle",
    "rescale_boxes",
    "rle_to_bitmap",
    "xywh_to_xyxy",
    "xyxy_to_cxcywh",
    "xyxy_to_xywh",
]
