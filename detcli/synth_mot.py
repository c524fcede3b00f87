"""`det synth mot`: synthetic MOTChallenge sequences (moving shapes, gt, noisy public detections)."""
from __future__ import annotations

from pathlib import Path

import typer

from det.cli.common import ForceOption, JsonOption, err, in_range, out, print_json


def synth_mot(
    out_dir: Path = typer.Argument(..., metavar="OUT", help="Folder to create the sequences in."),
    seqs: int = typer.Option(3, "--seqs", callback=in_range(1), help="Number of sequences."),
    frames: int = typer.Option(300, "--frames", callback=in_range(1), help="Frames per sequence."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same files)."),
    width: int = typer.Option(640, "--width", callback=in_range(16), help="Frame width in pixels."),
    height: int = typer.Option(480, "--height", callback=in_range(16), help="Frame height in pixels."),
    no_images: bool = typer.Option(False, "--no-images", help="Write only seqinfo.ini, gt.txt and det.txt (no img1/ frames)."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Write MOTChallenge sequences (seqinfo.ini, img1/ JPG frames, gt/gt.txt, det/det.txt) of
    moving shapes: linear and turning motion, occlusions, entries and exits; det.txt has
    missed and false detections, jittered boxes and visibility-dependent scores.

    Example: det synth mot data/mot_synth --seqs 3 --frames 300 --seed 0
    """
    from det.core.tracking.synth import generate_mot

    paths = generate_mot(out_dir, seqs=seqs, frames=frames, seed=seed, width=width, height=height,
                         write_images=not no_images, force=force)
    if json_:
        print_json({"out": str(out_dir), "sequences": [p.name for p in paths], "frames": frames, "seed": seed})
        return
    for p in paths:
        out.print(str(p), markup=False, highlight=False)
    err.print(f"wrote {len(paths)} sequences x {frames} frames under {out_dir}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    from det.cli.synth import synth_app

    synth_app.command("mot")(synth_mot)
