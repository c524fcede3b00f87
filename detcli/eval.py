"""`det eval`: COCO evaluation of a results file (MMDetection's metric names), or with `--mot` the
HOTA/CLEAR/Identity scores of any tracker's MOTChallenge result files."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from det.cli.common import JsonOption, fmt_metric, out, print_json
from det.core.evaluation.coco import IOU_TYPES, coco_evaluate, load_coco_gt, load_coco_results


def _f(v: float) -> str:
    return fmt_metric(v)


# Options whose help is long, kept out of the signature.
MetricOption = typer.Option("bbox", "--metric", help="bbox, segm, proposal, lvis (LVIS v1 AP with APr/APc/APf; "
    "bbox, and segm too when the results have masks), crowdhuman (AP, MR^-2, JI; "
    "--ann is the .odgt file), openimages (--ann is the box CSV), cityscapes (instance AP of segm results; "
    "--ann from `det convert cityscapes`, with --gt-dir) or voc (VOC 'area' mAP at IoU 0.5 of COCO "
    "results against COCO ground truth, crowds as difficult) or panoptic (PQ/SQ/RQ of COCO panoptic "
    "prediction PNGs + JSON; --ann is the panoptic JSON, PNG folders default to each JSON path without .json).")
MotOption = typer.Option(
    None, "--mot", metavar="GT_DIR TRACKS_DIR", help="Score MOTChallenge result files instead: GT_DIR holds "
    "<seq>/gt/gt.txt and seqinfo.ini, TRACKS_DIR holds <seq>.txt of any tracker.")
OccludedOption = typer.Option(
    None, "--occluded-separated", metavar="ANN.json", help="Also report occluded / separated mask recall "
    "(segm results; ANN.json from `det convert occluded-separated`).")
ImgSizesOption = typer.Option(
    None, "--img-sizes", metavar="PATH", help="With --metric crowdhuman or openimages: image sizes, a JSON "
    "mapping each image ID to (height, width) as MMDetection's id_hw files do, or the image folder (crowdhuman default: id_hw_{train,val}.json, "
    "else Images/, beside --ann; openimages: required).")
LabelFileOption = typer.Option(
    None, "--label-file", help="With --metric openimages: class descriptions CSV (MID,name; default "
    "class-descriptions-boxable.csv beside --ann).")
HierarchyOption = typer.Option(
    None, "--hierarchy-file", help="With --metric openimages: class hierarchy JSON (default "
    "bbox_labels_600_hierarchy.json beside --ann).")
ImageLevelOption = typer.Option(
    None, "--image-level-file", help="With --metric openimages: human-verified image-level labels CSV "
    "(detections of classes neither in an image's boxes nor in its labels are dropped).")
GtDirOption = typer.Option(
    None, "--gt-dir", help="With --metric cityscapes: the gtFine split folder holding <city>/*_instanceIds.png "
    "(default: gtFine/val beside the annotations folder). With --metric panoptic: the ground-truth PNG folder.")
PredDirOption = typer.Option(
    None, "--pred-dir", help="With --metric panoptic: the prediction PNG folder (default: RESULTS without .json).")
FormatOnlyOption = typer.Option(
    False, "--format-only", help="With --metric panoptic: write the COCO panoptic submission (JSON + PNG folder) "
    "for the images --ann lists to --out instead of scoring (e.g. --ann panoptic_image_info_test-dev2017.json).")
OutOption = typer.Option(None, "--out", help="With --format-only: the submission JSON to write (PNGs in its name's folder).")


def eval_(
    results: Optional[Path] = typer.Argument(None, help="COCO results JSON (image_id, category_id, score, bbox or segmentation)."),
    ann: Optional[Path] = typer.Option(None, "--ann", help="Ground truth: COCO JSON (crowdhuman: the .odgt file; openimages: the box CSV)."),
    metric: str = MetricOption,
    classwise: bool = typer.Option(False, "--classwise", help="Also report AP per class."),
    backend: str = typer.Option("det", "--backend", help="COCO evaluator: det (compiled) or pycocotools; same numbers."),
    mot: Optional[tuple[Path, Path]] = MotOption,
    benchmark: str = typer.Option("MOT17", "--benchmark", help="With --mot: MOT17 (or MOT16, MOT20) preprocessing."),
    occluded_separated: Optional[Path] = OccludedOption,
    score_thr: float = typer.Option(0.3, "--score-thr", help="With --occluded-separated: detection score threshold."),
    iou_thr: float = typer.Option(0.75, "--iou-thr", help="With --occluded-separated: mask IoU for a recalled object."),
    img_sizes: Optional[Path] = ImgSizesOption,
    label_file: Optional[Path] = LabelFileOption,
    hierarchy_file: Optional[Path] = HierarchyOption,
    image_level_file: Optional[Path] = ImageLevelOption,
    gt_dir: Optional[Path] = GtDirOption,
    pred_dir: Optional[Path] = PredDirOption,
    format_only: bool = FormatOnlyOption,
    out_file: Optional[Path] = OutOption,
    force: bool = typer.Option(False, "--force", "-f", help="With --format-only: replace existing files."),
    json_: bool = JsonOption,
) -> None:
    """Evaluate COCO-format results against COCO annotations (mAP, mAP_50, ..., or AR for proposals; or the
    LVIS, CrowdHuman, Open Images, Cityscapes and VOC metrics with --metric), or
    tracker result files against MOTChallenge ground truth (HOTA/CLEAR/Identity per sequence and combined).

    Example: det eval results.json --ann data/coco/annotations/instances_val2017.json --classwise
    Example: det eval results.segm.json --ann instances_val2017.json --metric segm --occluded-separated occ_sep.json
    Example: det eval results.json --ann data/CrowdHuman/annotation_val.odgt --metric crowdhuman
    Example: det eval results.json --ann validation-annotations-bbox.csv --metric openimages --img-sizes sizes.json
      --image-level-file validation-annotations-human-imagelabels-boxable.csv
    Example: det eval results.segm.json --ann data/cityscapes/annotations/instancesonly_filtered_gtFine_val.json
      --metric cityscapes --gt-dir data/cityscapes/gtFine/val
    Example: det eval --mot data/MOT17/train work_dirs/bytetrack/tracks --json
    Example: det eval pred/panoptic_val.json --ann data/coco/annotations/panoptic_val2017.json --metric panoptic --classwise
    """
    from det.core.errors import DetError, did_you_mean

    if mot is not None:
        if results is not None or ann is not None:
            raise DetError("--mot GT_DIR TRACKS_DIR takes no results file and no --ann")
        _eval_mot(mot[0], mot[1], benchmark, json_)
        return
    if results is None or ann is None:
        raise DetError("give a COCO results file and --ann ANN.json (or --mot GT_DIR TRACKS_DIR)")
    if metric not in METRICS:
        raise DetError(f"--metric '{metric}' is not supported{did_you_mean(metric, METRICS)}")
    if metric == "panoptic":
        _eval_panoptic(results, ann, gt_dir, pred_dir, classwise, json_, (format_only, out_file, force))
        return
    if format_only:
        raise DetError("--format-only is for --metric panoptic")
    if metric in OTHER_METRICS:
        _eval_other(metric, results, ann, classwise, json_, img_sizes=img_sizes, gt_dir=gt_dir,
                    openimages_files=(label_file, hierarchy_file, image_level_file))
        return
    _eval_coco(results, ann, metric, classwise, backend, json_, occluded_separated, score_thr, iou_thr)


OTHER_METRICS = ("lvis", "crowdhuman", "voc", "cityscapes", "openimages")


def _eval_other(metric: str, results: Path, ann: Path, classwise: bool, json_: bool, img_sizes: Optional[Path],
                gt_dir: Optional[Path], openimages_files: tuple) -> None:
    if metric == "lvis":
        _eval_lvis(results, ann, classwise, json_)
    elif metric == "crowdhuman":
        _eval_crowdhuman(results, ann, img_sizes, json_)
    elif metric == "voc":
        from det.core.evaluation.voc import voc_evaluate

        res = voc_evaluate(ann, results, classwise=classwise)
        if json_:
            print_json(res)
        else:
            _print_metrics(f"{results.name}: Pascal VOC mAP (IoU 0.5, area)", res)
    elif metric == "cityscapes":
        _eval_cityscapes(results, ann, gt_dir, classwise, json_)
    else:
        _eval_openimages(results, ann, img_sizes, openimages_files, classwise, json_)


def _eval_coco(results: Path, ann: Path, metric: str, classwise: bool, backend: str, json_: bool,
               occluded_separated: Optional[Path], score_thr: float, iou_thr: float) -> None:
    from det.core.errors import DetError

    coco = load_coco_gt(ann)
    dets = load_coco_results(results, coco, metric)
    res = coco_evaluate(coco, dets, metric, classwise=classwise, backend=backend)
    if occluded_separated is not None:
        from det.core.evaluation.occluded import load_lists, occluded_separated_recall

        if metric != "segm":
            raise DetError("--occluded-separated needs mask results: add --metric segm")
        res.update(occluded_separated_recall(coco, dets, load_lists(occluded_separated), score_thr, iou_thr))
    if json_:
        print_json(_no_nan(res))
        return
    _print_metrics(f"{results.name}: {metric} ({len(dets)} detections, {len(coco.getImgIds())} images)", res)
    if classwise and "classwise_detail" in res:
        table = Table(title="per class")
        cols = ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]
        table.add_column("class")
        for c in cols:
            table.add_column(c, justify="right")
        for name, row in res["classwise_detail"].items():
            table.add_row(name, *[_f(row[c]) for c in cols])
        out.print(table)


METRICS = (*IOU_TYPES, "lvis", "crowdhuman", "openimages", "cityscapes", "voc", "panoptic")


def _eval_panoptic(results: Path, ann: Path, gt_dir: Optional[Path], pred_dir: Optional[Path], classwise: bool,
                   json_: bool, formatting: tuple) -> None:
    from det.core.errors import DetError
    from det.core.evaluation.panoptic import evaluate_panoptic_files

    format_only, submission, force = formatting
    if not format_only and submission is not None:
        raise DetError("--out is for --format-only (the submission to write)")
    if format_only:
        from det.core.evaluation.panoptic_format import format_panoptic_submission

        if submission is None:
            raise DetError("--format-only needs --out SUBMISSION.json")
        res = format_panoptic_submission(ann, results, submission, pred_dir, force)
        if json_:
            print_json(res)
        else:
            out.print(f"wrote {res['images']} images, {res['segments']} segments: {res['json']} + {res['png_dir']}/",
                      markup=False, highlight=False)
        return
    res = evaluate_panoptic_files(ann, results, gt_dir, pred_dir, classwise=True)
    per_class = res.pop("classwise")
    if classwise:
        res["classwise"] = per_class
    if json_:
        print_json(_no_nan(res))
        return
    _print_metrics(f"{results.name}: COCO panoptic quality ({res['num_images']} images)", res)
    if classwise:
        table = Table(title="per class (classes with a TP, FP or FN)")
        for col in ("class", "PQ", "SQ", "RQ", "TP", "FP", "FN"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for name, row in per_class.items():
            table.add_row(name, *[_f(row[k]) for k in ("PQ", "SQ", "RQ", "TP", "FP", "FN")])
        out.print(table)


def _print_metrics(title: str, res: dict) -> None:
    """One table row per number (recalls in percent)."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in res.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.2f}%" if key.endswith("_recall") else _f(value))
        elif isinstance(value, int):
            table.add_row(key, str(value))
    out.print(table)


def _eval_lvis(results: Path, ann: Path, classwise: bool, json_: bool) -> None:
    from det.core.evaluation.lvis import lvis_evaluate
    from det.core.fileio import read_json

    dets = read_json(results, "results file")
    kinds = ["bbox"] + (["segm"] if isinstance(dets, list) and dets and isinstance(dets[0], dict)
                        and "segmentation" in dets[0] else [])
    res: dict = {}
    for kind in kinds:
        part = lvis_evaluate(ann, results, kind, classwise=classwise)
        if "classwise" in part:
            res.setdefault("classwise", {})[kind] = part.pop("classwise")
        res.update(part)
    if json_:
        print_json(_no_nan(res))
        return
    _print_metrics(f"{results.name}: LVIS ({', '.join(kinds)}; -1: no ground truth in that group)", res)


def _eval_crowdhuman(results: Path, ann: Path, img_sizes: Optional[Path], json_: bool) -> None:
    from det.core.evaluation.crowdhuman import crowdhuman_evaluate, load_crowdhuman

    is_dir = img_sizes is not None and img_sizes.is_dir()
    images = load_crowdhuman(ann, None if is_dir else img_sizes, img_sizes if is_dir else None)
    res = crowdhuman_evaluate(images, results)
    if json_:
        print_json(_no_nan(res))
        return
    _print_metrics(f"{results.name}: CrowdHuman ({len(images)} images; mAP higher is better, mMR lower)", res)


def _eval_cityscapes(results: Path, ann: Path, gt_dir: Optional[Path], classwise: bool, json_: bool) -> None:
    from det.core.errors import DetError
    from det.core.evaluation.cityscapes import cityscapes_evaluate

    gt_dir = gt_dir or ann.resolve().parent.parent / "gtFine" / "val"
    if not gt_dir.is_dir():
        raise DetError(f"{gt_dir}: gtFine split folder not found; give --gt-dir (e.g. data/cityscapes/gtFine/val)")
    res = cityscapes_evaluate(ann, results, gt_dir)
    per_class = res.pop("classwise")
    if classwise:
        res["classwise"] = per_class
    if json_:
        print_json(_no_nan(res))
        return
    _print_metrics(f"{results.name}: Cityscapes instance AP (NaN classes: no ground truth and no prediction)", res)
    if classwise:
        table = Table(title="per class")
        for col in ("class", "AP", "AP50"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for name, row in per_class.items():
            table.add_row(name, _f(row["AP"]), _f(row["AP50"]))
        out.print(table)


def _eval_openimages(results: Path, ann: Path, img_sizes: Optional[Path], files: tuple, classwise: bool,
                     json_: bool) -> None:
    from det.core.data.datasets.openimages import load_openimages
    from det.core.errors import DetError
    from det.core.evaluation.openimages import openimages_evaluate

    if img_sizes is None:
        raise DetError("--metric openimages needs --img-sizes (a JSON {ImageID: [h, w]} or the image folder): "
                       "the box CSV holds normalised coordinates")
    label_file = files[0] or ann.parent / "class-descriptions-boxable.csv"
    hierarchy_file = files[1] or ann.parent / "bbox_labels_600_hierarchy.json"
    is_dir = img_sizes.is_dir()
    mids, names, relation, images = load_openimages(ann, label_file, hierarchy_file, files[2],
                                                    None if is_dir else img_sizes, img_sizes if is_dir else "")
    res = openimages_evaluate(images, results, mids, relation, classwise=classwise, names=names)
    if json_:
        print_json(_no_nan(res))
        return
    _print_metrics(f"{results.name}: Open Images ({len(images)} images, {len(mids)} classes)", res)
    if classwise:
        table = Table(title="AP50 per class (classes with ground truth)")
        table.add_column("class")
        table.add_column("AP50", justify="right")
        for name, ap in res["classwise"].items():
            table.add_row(name, _f(ap))
        out.print(table)


MOT_COLUMNS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")  # all metrics: --json


def _eval_mot(gt_dir: Path, tracks_dir: Path, benchmark: str, json_: bool) -> None:
    from det.core.errors import DetError
    from det.core.evaluation.mot import evaluate_mot

    if benchmark not in ("MOT15", "MOT16", "MOT17", "MOT20"):
        raise DetError(f"--benchmark '{benchmark}': expected MOT15, MOT16, MOT17 or MOT20")
    for folder in (gt_dir, tracks_dir):
        if not folder.is_dir():
            raise DetError(f"{folder}: folder not found")
    res = evaluate_mot(gt_dir, tracks_dir, benchmark=benchmark)
    if json_:
        print_json(res)
        return
    table = Table(title=f"{tracks_dir.name}: HOTA / CLEAR / Identity ({benchmark}; --json for all metrics)",
                  box=box.SIMPLE, pad_edge=False)
    table.add_column("sequence")
    for col in MOT_COLUMNS:
        table.add_column(col, justify="right")
    rows = list(res["sequences"].items()) + [("COMBINED", res)]
    for name, m in rows:
        table.add_row(name, *[str(m[c]) if isinstance(m[c], int) else f"{100 * m[c]:.2f}" for c in MOT_COLUMNS])
    out.print(table)


def _no_nan(obj):
    """NaN (a class without ground truth) becomes null so the output stays strict JSON."""
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    return None if isinstance(obj, float) and math.isnan(obj) else obj


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)
