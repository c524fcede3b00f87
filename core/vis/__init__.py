"""Drawing detections on images: boxes, masks, labels, palettes, overview grids."""
from det.core.vis.draw import draw_instances, make_grid
from det.core.vis.palette import color_for, get_palette

__all__ = ["color_for", "draw_instances", "get_palette", "make_grid"]
