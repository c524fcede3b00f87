"""`det synth ...`: generate synthetic datasets (`det synth shapes`; other rooms add their
generators to `synth_app`, e.g. `det synth mot`)."""
from __future__ import annotations

from pathlib import Path

import typer

from det.cli.common import ForceOption, JsonOption, in_range, out, print_json

synth_app = typer.Typer(help="Generate synthetic datasets (no network needed).", no_args_is_help=True)


@synth_app.command("shapes")
def shapes(
    out_dir: Path = typer.Argument(..., help="Output folder (images in train/ and val/, instances_{train,val}.json)."),
    num_train: int = typer.Option(None, "--num-train", min=0, help="Number of training images (default 600; --panoptic 200)."),
    num_val: int = typer.Option(None, "--num-val", min=0, help="Number of validation images (default 100; --panoptic 50)."),
    size: int = typer.Option(None, "--size", min=32, help="Image side in pixels, square images (default 256; --panoptic 128)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives byte-identical files."),
    min_object_size: float = typer.Option(8, "--min-object-size", callback=in_range(1), help="Smallest shape (bounding-circle diameter, px)."),
    max_object_size: float = typer.Option(None, "--max-object-size", callback=in_range(1),
                                          help="Largest shape (bounding-circle diameter, px; default half the image)."),
    panoptic: bool = typer.Option(False, "--panoptic", help="Write a COCO panoptic dataset instead: the shapes as "
                                  "things on sky/ground/wall stuff bands (panoptic_{train,val}.json + PNG folders)."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Write a COCO dataset of coloured shapes (6 classes, polygon masks, occlusion, textured
    backgrounds, objects from ~8 px to half the image unless --min/--max-object-size say otherwise).

    Example: det synth shapes data/shapes --num-train 200 --num-val 50 --size 256 --seed 0 --min-object-size 16
    Example: det synth shapes data/panoptic --panoptic --num-train 200 --num-val 50 --size 128
    """
    from det.core.data.synthetic import SHAPE_CLASSES, generate_shapes
    from det.core.data.synthetic.shapes import object_size_range
    from det.core.errors import DetError

    defaults = (200, 50, 128) if panoptic else (600, 100, 256)
    num_train, num_val, size = (d if v is None else v for v, d in zip((num_train, num_val, size), defaults))
    try:
        low, high = object_size_range(size, min_object_size, max_object_size)
    except ValueError as exc:
        raise DetError(f"--min-object-size/--max-object-size: {exc}") from None
    for split in ("train", "val"):
        existing = out_dir / (f"panoptic_{split}.json" if panoptic else f"instances_{split}.json")
        if existing.exists() and not force:
            raise DetError(f"{existing}: already exists (use --force to overwrite)")
    if out_dir.exists() and not out_dir.is_dir():
        raise DetError(f"{out_dir}: exists and is not a folder")
    if panoptic:
        from det.core.data.synthetic.panoptic import STUFF_CLASSES, generate_panoptic_shapes

        paths = generate_panoptic_shapes(out_dir, num_train, num_val, size, seed, progress=True,
                                         min_object_size=low, max_object_size=high)
    else:
        paths = generate_shapes(out_dir, num_train, num_val, size, seed, progress=True, min_object_size=low,
                                max_object_size=high)
    summary = {"out_dir": str(out_dir), "classes": list(SHAPE_CLASSES) + (list(STUFF_CLASSES) if panoptic else []),
               "panoptic": panoptic, "num_train": num_train, "num_val": num_val,
               "size": size, "seed": seed, "min_object_size": low, "max_object_size": high, "annotations": {k: str(v) for k, v in paths.items()}}
    if json_:
        print_json(summary)
    else:
        out.print(f"wrote {num_train} train + {num_val} val images ({size}x{size}, seed {seed}) to {out_dir}", markup=False, highlight=False)
        for split, path in paths.items():
            out.print(f"  {split}: {path}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(synth_app, name="synth", help="Generate synthetic datasets: shapes (detection/segmentation), mot (tracking sequences).")
