"""Synthetic datasets det generates itself (no network): shapes for detection and instance
segmentation demos and tests."""
from det.core.data.synthetic.cache import cache_root, cached_dataset_dir
from det.core.data.synthetic.shapes import SHAPE_CLASSES, generate_shapes, render_image

__all__ = ["SHAPE_CLASSES", "cache_root", "cached_dataset_dir", "generate_shapes", "render_image"]
