"""A folder of images (searched recursively) -> COCO JSON without annotations, e.g. to run
`det test --format-only` on unlabelled images. Like MMDetection's images2coco: category ids
0..K-1 in the order of the class file, `supercategory: none`, `type: instance`; unlike it,
`file_name` is relative to IMG_DIR, only image extensions are collected and the output goes
exactly where OUT says."""
from __future__ import annotations

from pathlib import Path

from det.core.convert.common import (
    IMAGE_EXTENSIONS,
    image_size,
    parallel_map,
    plan_outputs,
    read_class_names,
    require_dir,
    summary,
    write_json,
)
from det.core.errors import DataError


def collect_images(img_dir: Path, exclude_extensions: list[str] | None = None) -> list[Path]:
    # '-e png -e bmp' and '-e png,bmp' both work
    parts = [p for e in exclude_extensions or [] for p in str(e).split(",") if p.strip()]
    excluded = tuple("." + p.strip().lower().lstrip(".") for p in parts)
    files = []
    for path in sorted(img_dir.rglob("*")):
        name = path.name.lower()
        if path.is_file() and name.endswith(IMAGE_EXTENSIONS) and not (excluded and name.endswith(excluded)):
            files.append(path)
    return files


def images_to_coco(img_dir: str | Path, classes_file: str | Path, out: str | Path,
                   exclude_extensions: list[str] | None = None, nproc: int = 1, force: bool = False) -> list[dict]:
    img_dir = require_dir(img_dir, "image folder")
    classes = read_class_names(classes_file)
    if not str(out).endswith(".json"):
        raise DataError(f"{out}: the output file name must end with .json")
    (path,) = plan_outputs([out], force)
    files = collect_images(img_dir, exclude_extensions)
    if not files:
        raise DataError(f"{img_dir}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
    sizes = parallel_map(image_size, [str(f) for f in files], nproc, "images2coco", min_parallel=1000)
    images = [
        {"id": i, "file_name": f.relative_to(img_dir).as_posix(), "height": h, "width": w}
        for i, (f, (w, h)) in enumerate(zip(files, sizes))
    ]
    categories = [{"supercategory": "none", "id": i, "name": name} for i, name in enumerate(classes)]
    write_json(path, {"images": images, "type": "instance", "categories": categories, "annotations": []})
    return [summary(path, images=len(images), annotations=0, categories=len(categories))]
