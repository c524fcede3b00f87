"""`det convert ...`: datasets to COCO JSON, YOLO interop, and checkpoint conversion."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from det.cli.common import ForceOption, JsonOption, SetOption, in_range, out, overrides, print_json

convert_app = typer.Typer(
    help="Convert datasets (Cityscapes, VOC, MOT, CrowdHuman, YouTube-VIS, YOLO, plain images) to COCO JSON, "
    "COCO to YOLO, and checkpoints (publish, MMDetection and torchvision weights).",
    no_args_is_help=True,
)

AllowEmptyOption = typer.Option(False, "--allow-empty", help="Write the output even when no tensor maps onto the model.")
NprocOption = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes for the per-file work.")


def _report(rows: list[dict], json_: bool) -> None:
    """Results on stdout: a JSON list, or one line per file written."""
    if json_:
        print_json(rows)
        return
    for row in rows:
        # lists (unmapped/missing keys, ...) are counted here; --json and the log show them in full
        rest = ", ".join(f"{k}={len(v) if isinstance(v, list) else v}" for k, v in row.items() if k != "file")
        out.print(f"{row['file']}" + (f"  ({rest})" if rest else ""), markup=False, highlight=False)


@convert_app.command("cityscapes")
def cityscapes(
    root: Path = typer.Argument(..., help="Cityscapes root holding leftImg8bit/ and gtFine/."),
    img_dir: str = typer.Option("leftImg8bit", "--img-dir", help="Image folder under ROOT."),
    gt_dir: str = typer.Option("gtFine", "--gt-dir", help="Annotation folder under ROOT."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", "-o", help="Output folder (default ROOT/annotations)."),
    mask_format: str = typer.Option("rle", "--mask-format", help="Segmentation as 'rle' (like MMDetection) or 'polygon'."),
    nproc: int = NprocOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Cityscapes instances (8 classes) -> instancesonly_filtered_gtFine_{train,val,test}.json.

    Reads *_gtFine_instanceIds.png (or rasterises *_gtFine_polygons.json when the PNG is absent).

    Example: det convert cityscapes data/cityscapes --out-dir data/cityscapes/annotations --jobs 8
    """
    from det.core.convert.cityscapes import convert_cityscapes

    _report(convert_cityscapes(root, out_dir, img_dir, gt_dir, nproc, mask_format, force), json_)


@convert_app.command("voc")
def voc(
    devkit: Path = typer.Argument(..., help="VOCdevkit folder holding VOC2007/ and/or VOC2012/."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", "-o", help="Output folder (default DEVKIT/annotations)."),
    classes: Optional[Path] = typer.Option(None, "--classes", help="Class list (one per line) for VOC-style custom data."),
    nproc: int = NprocOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Pascal VOC splits -> voc07_*.json, voc12_*.json, voc0712_*.json (difficult boxes as ignore).

    Example: det convert voc data/VOCdevkit --out-dir data/VOCdevkit/annotations
    """
    from det.core.convert.voc import convert_voc

    _report(convert_voc(devkit, out_dir, classes, nproc, force), json_)


@convert_app.command("images2coco")
def images2coco(
    img_dir: Path = typer.Argument(..., help="Folder of images (searched recursively)."),
    classes: Path = typer.Argument(..., help="Text file with one class name per line."),
    out: Path = typer.Argument(..., help="Output COCO JSON file."),
    exclude_extensions: Optional[list[str]] = typer.Option(None, "--exclude-extensions", "-e",
                                                           help="Image extensions to skip: -e png -e bmp or -e png,bmp."),
    nproc: int = NprocOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """A folder of unlabelled images -> COCO JSON with images and categories only.

    Example: det convert images2coco data/unlabelled classes.txt data/unlabelled.json -e bmp
    """
    from det.core.convert.images2coco import images_to_coco

    _report(images_to_coco(img_dir, classes, out, exclude_extensions, nproc, force), json_)


@convert_app.command("coco-panoptic-semantic")
def coco_panoptic_semantic(
    source: Path = typer.Argument(..., help="A COCO panoptic JSON (PNGs in the folder of its name), or the COCO root "
                                  "holding annotations/panoptic_{val2017,train2017}.json."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", "-o", help="Output folder (default panoptic_semseg_<split> "
                                           "beside the JSON)."),
    nproc: int = NprocOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """COCO panoptic -> semantic label PNGs (every category, things and stuff, as its index in the JSON's
    category list; unlabeled 255), as MMDetection's prepare_coco_semantic_annos_from_panoptic_annos.py.

    Example: det convert coco-panoptic-semantic data/coco --jobs 4
    """
    from det.core.convert.panoptic_semantic import convert_coco_panoptic_semantic

    _report(convert_coco_panoptic_semantic(source, out_dir, nproc, force), json_)


@convert_app.command("mot")
def mot(
    root: Path = typer.Argument(..., help="MOTChallenge root holding train/ and test/ (MOT15/16/17/20)."),
    out_dir: Path = typer.Option(..., "--out-dir", "-o", help="Output folder for *_cocoformat.json."),
    split_train: bool = typer.Option(False, "--split-train", help="Also write half-train/half-val splits of train."),
    convert_det: bool = typer.Option(False, "--convert-det", help="Also convert det/det.txt to *_detections.json."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """MOTChallenge -> COCO-video JSON (videos, frames, instance ids, visibility).

    Example: det convert mot data/MOT17 --out-dir data/MOT17/annotations --split-train --convert-det
    """
    from det.core.convert.mot import convert_mot

    _report(convert_mot(root, out_dir, split_train, convert_det, force), json_)


@convert_app.command("mot-reid")
def mot_reid(
    root: Path = typer.Argument(..., help="MOTChallenge root holding train/."),
    out_dir: Path = typer.Option(..., "--out-dir", "-o", help="Output folder for imgs/ and meta/."),
    val_split: float = typer.Option(0.2, "--val-split", callback=in_range(0, 1), help="Share of identities held out for validation."),
    vis_threshold: float = typer.Option(0.3, "--vis-threshold", callback=in_range(0, 1), help="Minimum visibility of a kept box."),
    min_per_person: int = typer.Option(8, "--min-per-person", callback=in_range(1), help="Identities with fewer crops are not listed."),
    max_per_person: int = typer.Option(1000, "--max-per-person", callback=in_range(1), help="At most this many crops listed per identity."),
    nproc: int = NprocOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """MOTChallenge train set -> ReID crops (imgs/{video}_{id}/) and meta/ train/val lists.

    Example: det convert mot-reid data/MOT17 --out-dir data/MOT17/reid --val-split 0.2 --vis-threshold 0.3
    """
    from det.core.convert.mot import convert_mot_reid

    _report(convert_mot_reid(root, out_dir, val_split, vis_threshold, min_per_person, max_per_person, nproc, force), json_)


@convert_app.command("crowdhuman")
def crowdhuman(
    root: Path = typer.Argument(..., help="CrowdHuman root holding annotation_{train,val}.odgt and {train,val}/Images."),
    out_dir: Path = typer.Option(..., "--out-dir", "-o", help="Output folder for crowdhuman_{train,val}.json."),
    nproc: int = NprocOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """CrowdHuman odgt -> COCO JSON (full boxes, visible boxes, ignore regions as crowd).

    Example: det convert crowdhuman data/crowdhuman --out-dir data/crowdhuman/annotations
    """
    from det.core.convert.crowdhuman import convert_crowdhuman

    _report(convert_crowdhuman(root, out_dir, nproc, force), json_)


@convert_app.command("youtubevis")
def youtubevis(
    root: Path = typer.Argument(..., help="YouTube-VIS root (2019: {train,valid,test}.json; 2021: {mode}/instances.json)."),
    out_dir: Path = typer.Option(..., "--out-dir", "-o", help="Output folder."),
    version: str = typer.Option(..., "--version", help="Dataset version: 2019 or 2021."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """YouTube-VIS -> COCO-video JSON youtube_vis_{version}_{train,valid,test}.json.

    Example: det convert youtubevis data/youtube_vis_2021 --out-dir data/youtube_vis_2021/annotations --version 2021
    """
    from det.core.convert.youtubevis import convert_youtubevis

    _report(convert_youtubevis(root, out_dir, version, force), json_)


@convert_app.command("yolo2coco")
def yolo2coco(
    data_yaml: Path = typer.Argument(..., help="Ultralytics data.yaml (path, train/val/test, names)."),
    out_dir: Path = typer.Option(..., "--out-dir", "-o", help="Output folder for {split}.json."),
    split: Optional[list[str]] = typer.Option(None, "--split", help="Only these splits (repeatable; default: all set)."),
    nproc: int = NprocOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """YOLO labels (boxes or segments) -> COCO JSON per split.

    Example: det convert yolo2coco data/coco8/data.yaml --out-dir data/coco8/annotations
    """
    from det.core.convert.yolo import yolo_to_coco

    _report(yolo_to_coco(data_yaml, out_dir, split, nproc, force), json_)


@convert_app.command("coco2yolo")
def coco2yolo(
    ann_file: Path = typer.Argument(..., help="COCO annotation JSON."),
    out_dir: Path = typer.Option(..., "--out-dir", "-o", help="YOLO dataset folder (labels/, images/, data.yaml)."),
    split: str = typer.Option("train", "--split", help="Split name in data.yaml and the folder names."),
    img_dir: Optional[Path] = typer.Option(None, "--img-dir", help="Folder the COCO file_name entries are relative to."),
    image_mode: str = typer.Option("symlink", "--image-mode", help="With --img-dir: symlink, copy or none."),
    segments: bool = typer.Option(False, "--segments", help="Write polygons (segment labels) instead of boxes."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """COCO JSON -> YOLO label txt files and data.yaml (run once per split into the same folder).

    Example: det convert coco2yolo data/coco/annotations/instances_val2017.json --out-dir data/coco_yolo --split val --img-dir data/coco/val2017
    """
    from det.core.convert.yolo import coco_to_yolo

    _report(coco_to_yolo(ann_file, out_dir, split, img_dir, image_mode, segments, force), json_)


@convert_app.command("publish")
def publish(
    src: Path = typer.Argument(..., help="Training checkpoint."),
    out: Path = typer.Argument(..., help="Output name; the first 8 hex digits of its sha256 are appended."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Drop optimizer and training state, move tensors to CPU, and name the file OUT-<sha256[:8]>.pt.

    Example: det convert publish work_dirs/rtmdet/last.pt rtmdet_tiny_coco.pt
    """
    from det.core.convert.checkpoints import publish as publish_checkpoint

    _report([publish_checkpoint(src, out, force)], json_)


@convert_app.command("mmdet-weights")
def mmdet_weights(
    src: Path = typer.Argument(..., help="MMDetection checkpoint (.pth)."),
    out: Path = typer.Argument(..., help="Output det checkpoint."),
    preset: str = typer.Option(..., "--preset", "-p", help="det preset of the same model (e.g. a bundled name)."),
    strict: bool = typer.Option(False, "--strict", help="Fail when any key is unmapped or missing."),
    allow_empty: bool = AllowEmptyOption,
    set_: Optional[list[str]] = SetOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Map an MMDetection checkpoint (RTMDet, RetinaNet, FCOS, Faster R-CNN, ResNet) onto det's model.

    Prints the keys nothing used (unmapped) and the det keys nothing filled (missing).

    Example: det convert mmdet-weights rtmdet_tiny_8xb32-300e_coco.pth rtmdet_tiny.pt --preset presets/_base_/models/rtmdet_tiny_coco.yaml
    """
    from det.core.convert.weights import convert_mmdet_weights

    _report([convert_mmdet_weights(src, out, preset, strict, force, overrides(set_), allow_empty)], json_)


@convert_app.command("torchvision-weights")
def torchvision_weights(
    src: Path = typer.Argument(..., help="torchvision state dict (resnet18..152, retinanet_resnet50_fpn, fcos_resnet50_fpn, "
                                        "fasterrcnn_resnet50_fpn)."),
    out: Path = typer.Argument(..., help="Output det checkpoint."),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="det preset to check against (required for detectors)."),
    prefix: str = typer.Option("backbone.", "--prefix", help="Key prefix for a ResNet classifier's weights."),
    strict: bool = typer.Option(False, "--strict", help="Fail when any key is unmapped or missing."),
    allow_empty: bool = AllowEmptyOption,
    set_: Optional[list[str]] = SetOption,
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Map torchvision weights onto det's modules (ResNet backbones, RetinaNet, FCOS, Faster R-CNN).

    Detectors need a preset of torchvision's variant, e.g. for retinanet_resnet50_fpn:
    --preset presets/_base_/models/retinanet_r50_fpn.yaml --set model.neck.add_extra_convs=on_output
    --set model.neck.relu_before_extra_convs=true (the error message lists what is missing).

    Example: det convert torchvision-weights resnet50-0676ba61.pth r50_backbone.pt
    """
    from det.core.convert.weights import convert_torchvision_weights

    _report([convert_torchvision_weights(src, out, preset, prefix, strict, force, overrides(set_), allow_empty)], json_)


@convert_app.command("occluded-separated")
def occluded_separated(
    inputs: list[Path] = typer.Argument(..., metavar="IN.pkl...", help="The published occluded_coco.pkl and/or "
                                        "separated_coco.pkl (the kind is read from the file name)."),
    out_path: Path = typer.Option(..., "--out", help="JSON file to write ({occluded: [...], separated: [...]})."),
    kind: Optional[str] = typer.Option(None, "--kind", help="occluded or separated, for one input whose name says neither."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling the inputs: a pickle can run "
                                      "any code when loaded, so only for files from a source you trust."),
    force: bool = ForceOption,
    json_: bool = JsonOption,
) -> None:
    """Occluded / separated COCO annotation pickles -> the JSON form `det eval --occluded-separated` reads.

    Example: det convert occluded-separated occluded_coco.pkl separated_coco.pkl --out occ_sep.json --trust-pickle
    """
    from det.core.errors import DetError
    from det.core.evaluation.occluded import KINDS, convert_pickles, kind_of
    from det.core.fileio import atomic_write_json, ensure_new

    if kind is not None and (kind not in KINDS or len(inputs) != 1):
        raise DetError("--kind takes occluded or separated, with one input file")
    kinds = [kind] if kind else [kind_of(p) for p in inputs]
    if len(set(kinds)) != len(kinds):
        raise DetError(f"two inputs of the same kind ({', '.join(kinds)})")
    ensure_new(out_path, force)
    data = convert_pickles(inputs, kinds, trust_pickle)
    atomic_write_json(out_path, data)
    _report([{"file": str(out_path), **{k: len(v) for k, v in data.items()}}], json_)


def register(app: typer.Typer) -> None:
    app.add_typer(convert_app, name="convert", help="Convert datasets to COCO / YOLO and checkpoints between toolkits.")
