"""`det optimize-anchors`: anchor shapes for a dataset (k-means or differential evolution)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from det.cli.common import ForceOption, JsonOption, SetOption, default_run_dir, err, in_range, out, overrides, print_json, renamed
from det.core.analysis import anchors as A
from det.core.errors import DetError
from det.core.fileio import read_json


def optimize_anchors(
    preset: Optional[str] = typer.Argument(None, help="A preset; its training dataset gives the boxes."),
    ann: Optional[Path] = typer.Option(None, "--ann", help="COCO annotation JSON instead of a preset."),
    algorithm: str = typer.Option("kmeans", "--algorithm", help="kmeans or differential-evolution."),
    img_size: tuple[int, int] = typer.Option((640, 640), "--img-size", callback=in_range(1), help="Model input height and width (H W)."),
    input_shape_old: Optional[tuple[int, int]] = typer.Option(None, "--input-shape", hidden=True, callback=in_range(1)),
    num_anchors: Optional[int] = typer.Option(None, "--num-anchors", callback=in_range(1),
                                              help="Anchors to fit [default: the preset's YOLO anchor count, else 9]."),
    iters: int = typer.Option(1000, "--iters", callback=in_range(1), help="Maximum iterations (k-means steps or evolution generations)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", "-o", help="Folder for anchor_optimize_result.json [default: runs/optimize-anchors/N]."),
    set_: Optional[list[str]] = SetOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Fit anchor shapes to the boxes of a dataset, rescaled as a keep-ratio resize to the input.

    Writes anchor_optimize_result.json (anchors sorted by area, mean best IoU) and prints a
    --set line that applies them to the preset.

    Example: det optimize-anchors --ann data/coco/annotations/instances_train2017.json --algorithm kmeans --img-size 608 608
    """
    # det's one image-size order is H W; the old --input-shape was W H.
    input_shape = renamed("--input-shape", "--img-size (H W)", input_shape_old, (img_size[1], img_size[0]))
    if (preset is None) == (ann is None):
        raise DetError("give either a PRESET or --ann GT.json (not both)")
    key, template = "model.bbox_head.anchor_generator.base_sizes", None
    if preset is not None:
        boxes, found = A.boxes_from_preset(preset, overrides(set_), input_shape)
        if found:
            key, template = found
    else:
        boxes = A.shapes_from_coco(read_json(ann, "annotation file"), input_shape, str(ann))
    if num_anchors is None:
        num_anchors = sum(len(lv) for lv in template) if isinstance(template, list) else 9
    out_dir = out_dir if out_dir is not None else default_run_dir("optimize-anchors")
    path = Path(out_dir) / "anchor_optimize_result.json"
    from det.core.fileio import ensure_new

    ensure_new(path, force)
    result = A.optimize_anchors(boxes, algorithm, input_shape, num_anchors, iters, seed)
    note = None
    if preset is not None:
        from det.core.config import load_preset

        result["set"], note = A.preset_set_line(result["anchors_float"], load_preset(preset, overrides(set_)).get("model") or {})
    else:
        result["set"] = A.set_line(result["anchors_float"], key, template)
    result["note"] = note
    result["source"] = str(preset if preset is not None else ann)
    A.write_result(out_dir, result, force)
    if json_:
        print_json({**result, "out": str(path)})
        return
    out.print(f"{result['num_boxes']} boxes, {algorithm}: mean IoU {result['mean_iou']:.4f} "
              f"with {num_anchors} anchors (sorted by area):", markup=False, highlight=False)
    out.print(" ".join(f"{w}x{h}" for w, h in result["anchors"]), markup=False, highlight=False)
    if result["set"]:
        out.print(result["set"], markup=False, highlight=False)
    if note:
        err.print(f"note: {note}", markup=False, highlight=False)
    out.print(f"saved {path}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("optimize-anchors")(optimize_anchors)
