"""`det train PRESET`: train a detector from a preset (single process, torchrun or Slurm)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from det.cli.common import ForceOption, JsonOption, SetOption, err, fmt_metric, out, overrides, print_json
from det.core.errors import DetError

CKPT_SUFFIXES = (".pt", ".pth", ".ckpt")


def _split_resume(preset: str, extra: Optional[str], resume: bool, resume_from: Optional[str]) -> tuple[str, bool | str | None]:
    """`--resume` is a flag whose optional value arrives as a second positional argument:
    `det train PRESET --resume CKPT` and `det train --resume CKPT PRESET` both work."""
    if extra is not None and not resume:
        raise DetError(f"unexpected extra argument '{extra}' (only `--resume CKPT` takes a second path)")
    if extra is not None:
        if preset.endswith(CKPT_SUFFIXES) and not extra.endswith(CKPT_SUFFIXES):
            preset, extra = extra, preset
        return preset, extra
    if resume_from:
        return preset, resume_from
    return preset, True if resume else None


# Options whose help is long, kept out of the signature.
DataOption = typer.Option(None, "--data", help="Train on this data: a COCO annotation file, a COCO folder, a YOLO "
                          "data.yaml or a VOC root; classes come from it (writes data.*.dataset, data.classes, "
                          "model...num_classes).")
ImgSizeOption = typer.Option(None, "--img-size", show_default=False, help="H W: scales every pipeline size key (scale, "
                             "img_scale, crop_size, size) by H W / the test resize.")
AmpOption = typer.Option(None, "--amp/--no-amp", show_default=False, help="Mixed precision: bf16 autocast on CPU, fp16 "
                         "with a grad scaler on CUDA (default: train.amp).")


def train(
    preset: str = typer.Argument(..., help="A preset file or a bundled preset name (e.g. demo/rtmdet_tiny)."),
    resume_ckpt: Optional[str] = typer.Argument(None, show_default=False,
                                                help="With --resume: the checkpoint to resume from."),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", "-w", help="Output folder (default: runs/train/N, the next free N)."),
    set_: Optional[list[str]] = SetOption,
    data: Optional[Path] = DataOption,
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Same as --set train.max_epochs=N."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1, help="Same as --set data.train.batch_size=B."),
    img_size: Optional[tuple[int, int]] = ImgSizeOption,
    no_plots: bool = typer.Option(False, "--no-plots", help="Do not draw results.png and the validation reports."),
    resume: bool = typer.Option(False, "--resume", help="Resume the latest checkpoint in the work dir, or CKPT when given (--resume CKPT)."),
    resume_from: Optional[str] = typer.Option(None, "--resume-from", help="Resume from this checkpoint (same as --resume CKPT)."),
    load_from: Optional[str] = typer.Option(None, "--load-from", help="Initialise weights from a checkpoint or a model name from `det models list` (weights only; mismatched head tensors are skipped and listed)."),
    amp: Optional[bool] = AmpOption,
    auto_scale_lr: bool = typer.Option(False, "--auto-scale-lr", help="Scale the lr by total batch / train.auto_scale_lr.base_batch_size."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: train.seed or 0)."),
    deterministic: bool = typer.Option(False, "--deterministic", help="Use deterministic algorithms (reproducible, slower)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Train a detector; writes WORK_DIR/preset.yaml, log.jsonl, epoch_N.pt, last.pt, best_<metric>.pt, metrics.json.

    Several processes: torchrun --nproc-per-node N -m det.cli train PRESET (or srun under Slurm).

    Example: det train demo/rtmdet_tiny --data data/shapes --epochs 3

    Example: det train presets/demo/rtmdet_tiny.yaml --work-dir work_dirs/demo --set train.max_epochs=3
    """
    from det.core.config import load_preset
    from det.core.config.validate import validate_preset
    from det.core import dist
    from det.core.engine.runner import train as run_train

    preset, resume_arg = _split_resume(preset, resume_ckpt, resume, resume_from)
    cfg = load_preset(preset, overrides(set_))
    created = work_dir is None and resume_arg is not True
    if work_dir is None:
        work_dir = _default_work_dir(resume_arg is True)
    from det.core.fileio import ensure_writable_folder

    ensure_writable_folder(work_dir)  # an unusable --work-dir fails before the preset is built
    try:
        shortcuts = _shortcuts(cfg, data, epochs, batch_size, img_size, work_dir)
        if shortcuts:
            from det.core.config import apply_overrides
            from det.core.config.shortcuts import describe

            err.print(f"shortcuts: {describe(shortcuts)}", markup=False, highlight=False)
            cfg = apply_overrides(cfg, shortcuts + overrides(set_))
        validate_preset(cfg)  # the checks of `det config validate`, before any work
    except DetError:
        if created and not any(work_dir.iterdir()):
            work_dir.rmdir()  # leave no empty runs/train/N behind a bad preset or --data
        raise
    if resume_arg is not None and load_from is not None:
        raise DetError("--resume and --load-from exclude each other (resume restores everything)")
    if load_from is not None:
        from det.core.zoo import resolve_weights

        load_from = str(resolve_weights(load_from))
    result = run_train(cfg, work_dir, resume=resume_arg, load_from=load_from, amp=amp,
                       auto_scale_lr=auto_scale_lr or None, seed=seed, deterministic=deterministic, device=device, force=force,
                       plots=not no_plots)
    if not dist.is_main():
        return
    if json_:
        print_json(result)
        return
    metrics = result.get("metrics") or {}
    for key, value in metrics.items():
        if isinstance(value, float) and "/" in key:
            out.print(f"{key}\t{fmt_metric(value)}", markup=False, highlight=False)
    best = result.get("best") or {}
    if best:
        out.print(f"best {best['metric']} {fmt_metric(best['value'])} at epoch {best['epoch']} -> {best.get('checkpoint')}", markup=False, highlight=False)
    out.print(f"work dir: {result['work_dir']}", markup=False, highlight=False)


def _default_work_dir(resume_latest: bool) -> Path:
    """runs/train/N: the latest one for a bare --resume, else the next free N."""
    from det.cli.common import default_run_dir
    from det.core.fileio import run_dirs

    if resume_latest:
        existing = run_dirs("train")
        if not existing:
            raise DetError("--resume: no earlier run in runs/train; give --work-dir or a checkpoint")
        return existing[-1]
    return default_run_dir("train")


def _shortcuts(cfg: dict, data: Optional[Path], epochs: Optional[int], batch_size: Optional[int],
               img_size: Optional[tuple[int, int]], work_dir: Path) -> list[str]:
    """The --set lines that --data/--epochs/--batch-size/--img-size stand for (user --set wins)."""
    from det.core.config import shortcuts as sc

    lines = sc.data_overrides(cfg, data, convert_dir=work_dir / "data") if data is not None else []
    lines += [sc.epochs_override(epochs)] if epochs else []
    lines += [sc.batch_size_override(batch_size)] if batch_size else []
    lines += sc.img_size_overrides(cfg, img_size) if img_size else []
    return lines


def register(app: typer.Typer) -> None:
    app.command("train", context_settings={"allow_interspersed_args": True})(train)
