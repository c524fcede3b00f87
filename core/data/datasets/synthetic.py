"""`SyntheticShapes`: the bundled shapes data as a dataset type, generated on first use into
`$DET_CACHE/synthetic/` (keyed by its parameters) and then read as a COCO dataset."""
from __future__ import annotations

from collections.abc import Sequence

from det.core.data.datasets.coco import CocoDataset
from det.core.data.datasets.coco_panoptic import CocoPanopticDataset
from det.core.data.synthetic.cache import cached_dataset_dir
from det.core.data.synthetic.shapes import GENERATOR_VERSION, SHAPE_CLASSES, generate_shapes, object_size_range

SHAPES_PALETTE = ((220, 20, 60), (0, 130, 255), (0, 200, 80), (255, 170, 0), (160, 60, 230), (0, 210, 210))


def shapes_dir(num_train: int, num_val: int, size: int, seed: int, min_object_size: float | None = None,
               max_object_size: float | None = None):
    """The cache folder holding this parameter set (generated when missing). Object sizes
    other than the defaults (8 px to half the image) are part of the folder name."""
    low, high = object_size_range(size, min_object_size, max_object_size)
    name = f"shapes-v{GENERATOR_VERSION}-n{num_train}-v{num_val}-s{size}-seed{seed}"
    if (low, high) != object_size_range(size):
        name += f"-obj{low:g}-{high:g}"

    def generate(tmp):
        from det.core.log import get_logger

        get_logger().info("generating synthetic shapes (%d train + %d val, %d px, objects %g-%g px, seed %d) into %s "
                          "(first use only)", num_train, num_val, size, low, high, seed, tmp.parent / name)
        generate_shapes(tmp, num_train, num_val, size, seed, progress=True, min_object_size=low, max_object_size=high)

    return cached_dataset_dir(name, generate)


class SyntheticShapes(CocoDataset):
    """`split` is 'train', 'val' or 'test' (test reads the val split); `min_object_size` and
    `max_object_size` bound the shapes' bounding-circle diameters in pixels. Other arguments are
    CocoDataset's (class subset, filters, pipeline)."""

    def __init__(self, split: str = "train", num_train: int = 600, num_val: int = 100, size: int = 256, seed: int = 0,
                 min_object_size: float | None = None, max_object_size: float | None = None,
                 classes: Sequence[str] | None = None, palette: Sequence[Sequence[int]] | None = None,
                 pipeline: list | None = None, filter_empty_gt: bool = True, min_size: int = 0, test_mode: bool = False,
                 max_refetch: int = 100) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, got '{split}'")
        for name, value, low in (("num_train", num_train, 0), ("num_val", num_val, 0), ("size", size, 32)):
            if int(value) < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        self.split = split
        self.params = {"num_train": int(num_train), "num_val": int(num_val), "size": int(size), "seed": int(seed),
                       "min_object_size": min_object_size, "max_object_size": max_object_size}
        root = shapes_dir(**self.params)
        file_split = "train" if split == "train" else "val"
        if palette is None:
            chosen = classes if classes is not None else SHAPE_CLASSES
            palette = [SHAPES_PALETTE[SHAPE_CLASSES.index(c)] if c in SHAPE_CLASSES else (128, 128, 128) for c in chosen]
        super().__init__(ann_file=str(root / f"instances_{file_split}.json"), data_prefix=str(root), classes=classes,
                         palette=palette, pipeline=pipeline, filter_empty_gt=filter_empty_gt, min_size=min_size,
                         test_mode=test_mode, max_refetch=max_refetch)


def panoptic_shapes_dir(num_train: int, num_val: int, size: int, seed: int):
    """The cache folder of a synthetic panoptic parameter set (generated when missing)."""
    from det.core.data.synthetic.panoptic import PANOPTIC_GENERATOR_VERSION, generate_panoptic_shapes

    name = f"panoptic-shapes-v{GENERATOR_VERSION}.{PANOPTIC_GENERATOR_VERSION}-n{num_train}-v{num_val}-s{size}-seed{seed}"
    return cached_dataset_dir(name, lambda tmp: generate_panoptic_shapes(tmp, num_train, num_val, size, seed))


class SyntheticPanopticShapes(CocoPanopticDataset):
    """The synthetic panoptic shapes (6 thing shapes on sky/ground/wall stuff) generated on
    first use into the cache; `split` 'train', 'val' or 'test' (the val split)."""

    def __init__(self, split: str = "train", num_train: int = 200, num_val: int = 50, size: int = 128, seed: int = 0,
                 classes: Sequence[str] | None = None, palette: Sequence[Sequence[int]] | None = None,
                 pipeline: list | None = None, filter_empty_gt: bool = True, min_size: int = 0,
                 test_mode: bool = False, max_refetch: int = 100) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, got '{split}'")
        for name, value, low in (("num_train", num_train, 0), ("num_val", num_val, 0), ("size", size, 32)):
            if int(value) < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        self.split = split
        root = panoptic_shapes_dir(int(num_train), int(num_val), int(size), int(seed))
        part = "train" if split == "train" else "val"
        if palette is None and classes is None:
            palette = [*SHAPES_PALETTE, (235, 206, 135), (60, 110, 70), (150, 140, 170)]
        super().__init__(ann_file=str(root / f"panoptic_{part}.json"), data_prefix={"img": str(root / part)},
                         classes=classes, palette=palette, pipeline=pipeline, filter_empty_gt=filter_empty_gt,
                         min_size=min_size, test_mode=test_mode, max_refetch=max_refetch)
