"""What `det train` and `det test` do, callable from Python: build model, data and evaluator
from a resolved preset, then train (Trainer) or evaluate a checkpoint."""
from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from det.core.engine import checkpoint as ckpt_io
from det.core import dist
from det.core.engine.device import resolve_device, seed_everything
from det.core.engine.evaluate import run_evaluation
from det.core.engine.trainer import Trainer, write_metrics
from det.core.errors import ConfigError, DataError, DetError
from det.core.fileio import atomic_write, atomic_write_json, atomic_write_text, ensure_new, ensure_writable_folder, load_checkpoint
from det.core.log import get_logger

DEMO_HINT = ("to try det without downloading a dataset, use a demo preset on the bundled synthetic data, "
             "e.g. det train presets/demo/rtmdet_tiny.yaml")
RUN_FILES = ("last.pt", "log.jsonl")
RUN_OUTPUTS = ("last.pt", "log.jsonl", "metrics.json", "preset.yaml", "tensorboard")


def _section(cfg: dict, key: str) -> dict:
    value = cfg.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: missing section")
    return value


def loader_cfg(cfg: dict, split: str) -> dict:
    data = _section(cfg, "data")
    if split == "test" and not isinstance(data.get("test"), dict):
        split = "val"
    section = data.get(split)
    if not isinstance(section, dict):
        raise ConfigError(f"data.{split}: missing loader section (dataset, pipeline, batch_size)")
    return section


def build_split(cfg: dict, split: str) -> tuple[Any, Any, dict]:
    """(dataset, collate_fn, loader section) of `data.<split>` ('test' falls back to 'val')."""
    from det.core.data import build_dataset, collate
    from det.core.data.loader import check_loader_keys

    section = loader_cfg(cfg, split)
    key = f"data.{split if split != 'test' or 'test' in cfg['data'] else 'val'}"
    check_loader_keys(section, key)
    try:
        dataset = build_dataset({k: v for k, v in section.items() if k in ("dataset", "pipeline")}, key=key)
    except DetError as exc:
        msg = str(exc)
        if ("not found" in msg or "No such file" in msg) and "det synth" not in msg:  # no second hint
            raise type(exc)(f"{msg}; {DEMO_HINT}") from None
        raise
    collate_fn = partial(collate, size_divisor=int(section.get("size_divisor", 32)), pad_val=int(section.get("pad_val", 0)))
    if len(dataset) == 0:
        raise DataError(f"{key}.dataset: no images")
    return dataset, collate_fn, section


def _check_data_classes(cfg: dict, dataset: Any) -> None:
    names = (cfg.get("data") or {}).get("classes")
    got = list(getattr(dataset, "classes", []) or [])
    if names and got and list(names) != got:
        raise ConfigError(f"data.classes lists {len(names)} classes but the dataset provides {len(got)} ({', '.join(got[:6])})")


def prepare_work_dir(work_dir: Path, resume: bool, force: bool) -> None:
    """Refuse to start over an earlier run unless --force; with --force, the earlier run's
    files move aside into `WORK_DIR/previous_run_N/` (said on stderr), so its checkpoints can
    neither be pruned as this run's nor resumed by mistake."""
    ensure_writable_folder(work_dir)  # before any model is built or data read
    existing = [name for name in RUN_FILES if (work_dir / name).exists()]
    if existing and not resume and not force:
        raise DetError(f"{work_dir}: already holds a training run ({existing[0]}); use --resume to continue it "
                       f"or --force to start over")
    if force and not resume:
        _move_old_run(work_dir)


def _move_old_run(work_dir: Path) -> None:
    old = [p for p in sorted(work_dir.glob("*")) if p.name in RUN_OUTPUTS or (p.suffix == ".pt" and (
        ckpt_io.EPOCH_RE.match(p.name) or p.name.startswith("best_")))]
    if not old:
        return
    n = 1
    while (work_dir / f"previous_run_{n}").exists():
        n += 1
    target = work_dir / f"previous_run_{n}"
    target.mkdir()
    for path in old:
        path.rename(target / path.name)
    get_logger().warning(f"--force: moved the earlier run's {len(old)} files ({', '.join(p.name for p in old[:4])}"
                         f"{', ...' if len(old) > 4 else ''}) to {target}")


def train(cfg: dict, work_dir: str | Path, *, resume: bool | str | Path | None = None, load_from: str | Path | None = None,
          amp: bool | None = None, auto_scale_lr: bool | None = None, seed: int | None = None,
          deterministic: bool = False, device: str = "auto", force: bool = False, plots: bool = False) -> dict:
    """Train from a resolved preset. Writes preset.yaml, log.jsonl, checkpoints and
    metrics.json into `work_dir` (rank 0), and with `plots` results.png and the reports of the
    last validation (as `det test` draws them). Returns {'metrics', 'best', 'epoch', 'iter', ...}."""
    dev = resolve_device(device)
    dist.init_distributed(dev)
    rank = dist.get_rank()
    work_dir = Path(work_dir)
    resume_path: Path | None = None
    if resume:
        if resume is True:
            resume_path = ckpt_io.find_latest(work_dir)
            if resume_path is None:
                raise DetError(f"--resume: no checkpoint (last.pt, epoch_N.pt) in {work_dir}")
        else:
            resume_path = Path(resume)
            if not resume_path.is_file():
                raise DetError(f"--resume {resume}: checkpoint not found")
    if rank == 0:
        prepare_work_dir(work_dir, resume_path is not None, force)
    seed = int(seed if seed is not None else (cfg.get("train") or {}).get("seed", 0))
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return _train(cfg, work_dir, resume_path, load_from, amp, auto_scale_lr, seed, deterministic, dev, rank, plots)
    finally:  # a Python caller's process keeps its own setting after training
        torch.use_deterministic_algorithms(was_deterministic)


def _train(cfg: dict, work_dir: Path, resume_path: Path | None, load_from: str | Path | None, amp: bool | None,
           auto_scale_lr: bool | None, seed: int, deterministic: bool, dev: torch.device, rank: int,
           plots: bool = True) -> dict:
    log = get_logger()
    seed_everything(seed + rank, deterministic)
    try:
        from det.core.data.transforms.rng import seed_all

        seed_all(seed + rank)
    except ImportError:
        pass

    from det.core.models import build_detector

    if "model" not in cfg:
        raise ConfigError("model: missing section")
    train_set, collate_fn, train_section = build_split(cfg, "train")
    _check_data_classes(cfg, train_set)
    val_set = val_collate = evaluator = None
    val_section: dict = {}
    if isinstance(cfg["data"].get("val"), dict):
        from det.core.evaluation.evaluator import build_evaluator

        val_set, val_collate, val_section = build_split(cfg, "val")
        evaluator = build_evaluator(cfg.get("evaluation"), val_set)
    collector = None
    panoptic = (cfg.get("evaluation") or {}).get("type") == "CocoPanopticMetric"
    if plots and evaluator is not None and not panoptic:  # the reports (PR curve, AP) are box/mask ones
        from det.core.analysis.reports import ReportCollector

        collector = ReportCollector(val_set, with_masks=_iou_type(cfg) == "segm")
        evaluator = _Tee(evaluator, collector)
    model = build_detector(cfg["model"])
    if getattr(model, "backbone_init", None) and resume_path is None and not load_from:
        from det.core.zoo.pretrained import init_backbone

        init_backbone(model.backbone, model.backbone_init)
    if load_from:
        ckpt_io.load_weights(model, load_from)
    if rank == 0:
        work_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(work_dir / "preset.yaml", yaml.safe_dump(cfg, sort_keys=False))
    trainer = Trainer(
        model, cfg.get("train") or {}, work_dir, train_dataset=train_set, collate_fn=collate_fn,
        loader_cfg=train_section, val_dataset=val_set, val_collate_fn=val_collate, val_loader_cfg=val_section,
        evaluator=evaluator, preset=cfg,
        classes=list(getattr(train_set, "classes", []) or []), device=dev, seed=seed, deterministic=deterministic,
        amp=amp, auto_scale_lr=auto_scale_lr, switch_pipeline=train_section.get("switch_pipeline"),
    )
    t0 = time.perf_counter()
    result = trainer.fit(resume=resume_path)
    result = {**result, "train_time_s": round(time.perf_counter() - t0, 1), "work_dir": str(work_dir),
              "last_checkpoint": str(trainer.last_checkpoint) if trainer.last_checkpoint else None}
    if collector is not None:
        collector.gather()
    if rank == 0 and plots:
        result["reports"] = _train_reports(work_dir, collector, val_set, cfg)
    if rank == 0:
        write_metrics(work_dir / "metrics.json", _plain(result))
        log.info(closing_message(work_dir, trainer.last_checkpoint))
    dist.barrier()
    return result


def _train_reports(work_dir: Path, collector: Any, val_set: Any, cfg: dict) -> dict:
    """results.png from the log, and the last validation's reports (when it ran)."""
    from det.core.analysis.reports import results_figure

    files = {}
    figure = results_figure(work_dir / "log.jsonl", work_dir / "results.png") if (work_dir / "log.jsonl").is_file() else None
    if figure is not None:
        files["results"] = str(figure)
    if collector is not None and collector.coco_results:
        files.update(collector.write(val_set.coco_gt(), work_dir, _iou_type(cfg))["files"])
    return files


def closing_message(work_dir: Path, last_checkpoint: Path | None) -> str:
    """'outputs in WORK_DIR: ...' naming only files that exist now (a checkpoint outside the
    work dir by its full path)."""
    names = [n for n in ("preset.yaml", "log.jsonl") if (work_dir / n).is_file()]
    if last_checkpoint is not None and Path(last_checkpoint).is_file():
        inside = Path(last_checkpoint).parent.resolve() == work_dir.resolve()
        names.append(Path(last_checkpoint).name if inside else str(last_checkpoint))
    if (work_dir / "metrics.json").is_file():
        names.append("metrics.json")
    return f"outputs in {work_dir}: {', '.join(names) if names else 'none'}"


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj


def resolve_test_inputs(first: str, second: str | None, overrides: Sequence[str]) -> tuple[dict, Path]:
    """`det test PRESET CKPT` or `det test CKPT` -> (resolved preset, checkpoint path)."""
    from det.core.config import apply_overrides, load_preset

    if second is None:
        ckpt_path = Path(first)
        ckpt = load_checkpoint(ckpt_path)
        if not isinstance(ckpt.get("preset"), dict) or not ckpt["preset"]:
            raise DetError(f"{ckpt_path}: the checkpoint carries no preset; run det test PRESET {ckpt_path}")
        from det.core.config.plugins import import_custom

        cfg = apply_overrides(ckpt["preset"], list(overrides))
        import_custom(cfg, None)
        return cfg, ckpt_path
    return load_preset(first, list(overrides)), Path(second)


def test(cfg: dict, checkpoint: str | Path, *, work_dir: str | Path | None = None, out: str | Path | None = None,
         show_dir: str | Path | None = None, score_thr: float = 0.3, tta: bool = False, format_only: bool = False,
         device: str = "auto", force: bool = False, tta_scales: Sequence[float] = (1.0,), plots: bool = False) -> dict:
    """Evaluate `checkpoint` on `data.test` (or `data.val`): returns {'metrics', ...}; writes
    metrics.json (with the data it scored) into `work_dir` (never over an earlier one unless
    `force`), COCO results to `out`, `ground truth | prediction` drawings into `show_dir`, and
    with `plots` the reports (pr_curve.png, per_class_ap.csv, confusion matrix,
    val_predictions.jpg) beside metrics.json.

    A MOT preset (a `tracker` section and MOTChallengeDataset test data) evaluates detector +
    tracker instead: `out` is then the folder of the per-sequence tracks (default
    `work_dir/tracks`), detections go to `work_dir/detections`, metrics are HOTA/CLEAR/Identity."""
    from det.core.models import build_detector
    from det.core.models.layers import fuse_conv_bn
    from det.core.tracking.evaluate import is_mot_preset

    mot = is_mot_preset(cfg)
    if mot:
        for flag, used in (("--tta", tta), ("--show-dir", show_dir is not None), ("--format-only", format_only)):
            if used:
                raise DetError(f"{flag}: not available for a MOT preset (detector + tracker); run without it")
    dev = resolve_device(device)
    dist.init_distributed(dev)
    checkpoint = Path(checkpoint)
    work_dir = Path(work_dir) if work_dir else checkpoint.parent / f"test_{checkpoint.stem}"
    if mot and dist.get_world_size() > 1:
        raise DetError("det test on a MOT preset runs in one process (each sequence is tracked in frame order)")
    if out is not None and dist.is_main() and not mot:
        ensure_new(out, force)
    if dist.is_main() and not format_only:
        ensure_new(work_dir / "metrics.json", force)
    if show_dir is not None and dist.is_main():
        ensure_writable_folder(show_dir)
    ckpt = load_checkpoint(checkpoint)
    model = build_detector(_section(cfg, "model"))
    state = ckpt_io.weights_of(ckpt, checkpoint)
    ckpt_io.fit_weights(model, state, checkpoint)
    fuse_conv_bn(model.to(dev).eval())  # inference only: BatchNorm folded into the convs
    dataset, collate_fn, section = build_split(cfg, "test")
    meta_classes = (ckpt.get("meta") or {}).get("classes")
    if meta_classes and list(getattr(dataset, "classes", meta_classes)) != list(meta_classes):
        raise ConfigError(f"{checkpoint}: trained on classes {list(meta_classes)[:6]}, the test data has "
                          f"{list(dataset.classes)[:6]}")
    panoptic = getattr(model, "task", None) == "panoptic"
    if panoptic and tta:
        raise DetError("--tta: not available for a panoptic model")
    panoptic_out = None
    if panoptic:
        evaluator, keep_results, panoptic_out = _panoptic_evaluator(cfg, dataset, out, format_only, force)
    else:
        evaluator, keep_results = _test_evaluator(cfg, dataset, mot, out, work_dir, format_only, force)
    predictor = _tta_predictor(cfg, tta_scales) if tta else None
    drawer = (_PanopticDrawer(show_dir, dataset) if panoptic else _Drawer(show_dir, dataset, score_thr)) \
        if show_dir else None
    if panoptic_out is not None:
        evaluator = _Tee(evaluator, panoptic_out)
    if drawer is not None:
        evaluator = _Tee(evaluator, drawer)
    collector = None
    if plots and not mot and not format_only and not panoptic:
        from det.core.analysis.reports import ReportCollector

        collector = ReportCollector(dataset, score_thr, with_masks=_iou_type(cfg) == "segm")
        evaluator = _Tee(evaluator, collector)
    t0 = time.perf_counter()
    metrics = run_evaluation(model, dataset, collate_fn, evaluator, dev, predict=predictor, desc="test",
                             loader_cfg=section)
    elapsed = time.perf_counter() - t0
    results = evaluator.results() if keep_results else None
    if collector is not None:
        collector.gather()
    summary = {"checkpoint": str(checkpoint), "metrics": _plain(metrics), "num_images": len(dataset),
               "time_s": round(elapsed, 2), "tta": tta, "data": data_record(cfg, dataset)}
    if mot:
        summary.update(evaluator.summary())
    if panoptic_out is not None:
        written = panoptic_out.close()
        if dist.is_main():
            summary["out"] = written["json"]
            get_logger().info(f"wrote {written['images']} panoptic PNGs to {written['png_dir']} and {out}")
    if dist.is_main():
        _write_test_outputs(summary, out, results, collector, dataset, work_dir, _iou_type(cfg), format_only)
        if drawer is not None:
            summary["show_dir"] = str(show_dir)
    dist.barrier()
    return summary


def _write_test_outputs(summary: dict, out: Path | None, results: list | None, collector: Any, dataset: Any,
                        work_dir: Path, iou_type: str, format_only: bool) -> None:
    """COCO results, the reports and metrics.json of `det test` (main process)."""
    if out is not None and results is not None:
        atomic_write_json(out, results)
        summary["out"] = str(out)
        get_logger().info(f"wrote {len(results)} COCO results to {out}")
    if collector is not None:
        report = collector.write(dataset.coco_gt(), work_dir, iou_type)
        summary["per_class_ap"], summary["reports"] = report["per_class_ap"], report["files"]
    if not format_only:
        write_metrics(work_dir / "metrics.json", summary)
        summary["metrics_file"] = str(work_dir / "metrics.json")


def _test_evaluator(cfg: dict, dataset: Any, mot: bool, out: str | Path | None, work_dir: Path, format_only: bool,
                    force: bool) -> tuple[Any, bool]:
    """(evaluator, whether its COCO results are kept for `out`) of `det test`."""
    from det.core.evaluation.evaluator import CocoMetric, build_evaluator

    if mot:
        from det.core.tracking.evaluate import MOTTrackingEvaluator

        return MOTTrackingEvaluator(dataset, cfg["tracker"], Path(out) if out is not None else work_dir / "tracks",
                                    work_dir / "detections", force=force), False
    if format_only or out is not None:
        base = cfg.get("evaluation") or {}
        metric = base.get("metric", "bbox") if base.get("type", "CocoMetric") == "CocoMetric" else "bbox"
        return CocoMetric(dataset, metric=metric, classwise=bool(base.get("classwise", False)),
                          format_only=format_only), True
    return build_evaluator(cfg.get("evaluation"), dataset), False


def _panoptic_evaluator(cfg: dict, dataset: Any, out: str | Path | None, format_only: bool,
                        force: bool) -> tuple[Any, bool, Any]:
    """(CocoPanopticMetric of the preset, False, the `--out` writer or None) of `det test` on a
    panoptic model: `out` gets the COCO panoptic JSON and the PNG folder of the same name."""
    from det.core.evaluation.evaluator import build_evaluator

    base = dict(cfg.get("evaluation") or {"type": "CocoPanopticMetric"})
    if base.get("type") != "CocoPanopticMetric":
        raise ConfigError(f"evaluation.type: a panoptic model is scored by CocoPanopticMetric, not {base.get('type')}")
    evaluator = _NoMetrics() if format_only else build_evaluator(base, dataset)
    writer = _PanopticOut(out, dataset, force) if out is not None else None
    return evaluator, False, writer


class _NoMetrics:
    """The evaluator of `det test --format-only --out` on a panoptic model (files only)."""

    def reset(self) -> None:
        pass

    def process(self, samples: Sequence[Any], preds: Sequence[Any]) -> None:
        pass

    def evaluate(self) -> dict:
        return {}


class _PanopticOut:
    """Hands each prediction of `det test` to a `PanopticPredictionWriter` writing `out` (JSON)
    and its PNG folder (the JSON path without .json), with the dataset's image ids and categories."""

    def __init__(self, out: str | Path, dataset: Any, force: bool) -> None:
        from det.core.data.panoptic_io import PanopticPredictionWriter

        self.dataset = dataset
        self.index = {int(d["img_id"]): i for i, d in enumerate(dataset.data_list)}
        self.writer = PanopticPredictionWriter(out, dataset.categories, list(dataset.cat_ids), force=force)

    def __call__(self, samples: Sequence[Any], preds: Sequence[Any]) -> None:
        for sample, pred in zip(samples, preds):
            rec = self.dataset.data_list[self.index[int(sample.img_id)]]
            self.writer.add({"id": rec["img_id"], "file_name": rec["file_name"]}, pred)

    def close(self) -> dict:
        return self.writer.close(gather=True)


class _PanopticDrawer:
    """Draws each image's fused panoptic prediction (stuff by class, things one by one) into
    `show_dir` (PNG, same stem)."""

    def __init__(self, show_dir: str | Path, dataset: Any) -> None:
        self.dir = Path(show_dir)
        self.classes = list(dataset.classes)
        self.palette = getattr(dataset, "palette", None)
        self.num_things = int(dataset.num_things)

    def __call__(self, samples: Sequence[Any], preds: Sequence[Any]) -> None:
        import cv2

        from det.core.vis.panoptic import draw_panoptic_prediction

        for sample, pred in zip(samples, preds):
            img = cv2.imread(sample.img_path, cv2.IMREAD_COLOR) if sample.img_path else None
            if img is None:
                raise DataError(f"{sample.img_path or 'image ' + str(sample.img_id)}: cannot read image for --show-dir")
            drawn = draw_panoptic_prediction(img, pred, self.classes, self.num_things, self.palette)
            ok, buf = cv2.imencode(".png", drawn)
            atomic_write(self.dir / (Path(sample.img_path).stem + ".png"), lambda fh, b=buf: fh.write(b.tobytes()))


def _tta_predictor(cfg: dict, scales: Sequence[float]) -> Any:
    from det.core.engine.tta import TTAPredictor

    tcfg = (cfg.get("model") or {}).get("test_cfg") or {}
    return TTAPredictor(scales=scales, flip=True, iou_thr=float((tcfg.get("nms") or {}).get("iou_threshold", 0.6)),
                        max_per_img=int(tcfg.get("max_per_img", 100)))


def _iou_type(cfg: dict) -> str:
    metric = (cfg.get("evaluation") or {}).get("metric", "bbox")
    return "segm" if metric == "segm" or (isinstance(metric, list) and "segm" in metric) else "bbox"


def data_record(cfg: dict, dataset: Any) -> dict:
    """What `det test` scored: the preset's data section used, its annotation file and images."""
    section = (cfg.get("data") or {}).get("test") or (cfg.get("data") or {}).get("val") or {}
    record = {"split": "test" if isinstance((cfg.get("data") or {}).get("test"), dict) else "val",
              "dataset": _plain(section.get("dataset")), "num_images": len(dataset),
              "classes": list(getattr(dataset, "classes", []) or [])}
    for attr in ("ann_file", "img_prefix"):
        if getattr(dataset, attr, None):
            record[attr] = str(getattr(dataset, attr))
    return record


class _Drawer:
    """Draws each image's ground truth | predictions above `score_thr` into `show_dir` (PNG,
    same stem)."""

    def __init__(self, show_dir: str | Path, dataset: Any, score_thr: float):
        from det.core.analysis.confusion import read_gt

        self.dir = Path(show_dir)
        self.classes = list(getattr(dataset, "classes", []) or [])
        self.palette = getattr(dataset, "palette", None)
        self.score_thr = score_thr
        self.gt = read_gt(dataset.coco_gt(), "ground truth")

    def __call__(self, samples: Sequence[Any], preds: Sequence[Any]) -> None:
        import cv2

        from det.core.analysis.reports import draw_gt_pred

        for sample, pred in zip(samples, preds):
            img = cv2.imread(sample.img_path, cv2.IMREAD_COLOR) if sample.img_path else None
            if img is None:
                raise DataError(f"{sample.img_path or 'image ' + str(sample.img_id)}: cannot read image for --show-dir")
            keep = pred.scores >= self.score_thr if pred.scores is not None else torch.ones(len(pred), dtype=torch.bool)
            empty = (np.zeros((0, 4)), np.zeros(0, np.int64))
            boxes, labels = self.gt.boxes.get(sample.img_id, empty[0]), self.gt.labels.get(sample.img_id, empty[1])
            drawn = draw_gt_pred(img, boxes, labels, pred[keep], self.classes, self.palette)
            name = Path(sample.img_path).stem + ".png"
            ok, buf = cv2.imencode(".png", drawn)
            atomic_write(self.dir / name, lambda fh, b=buf: fh.write(b.tobytes()))


class _Tee:
    """Forwards to an evaluator and also hands each batch to a drawer."""

    def __init__(self, evaluator: Any, drawer: _Drawer):
        self.evaluator, self.drawer = evaluator, drawer

    def reset(self) -> None:
        self.evaluator.reset()
        if hasattr(self.drawer, "reset"):
            self.drawer.reset()

    def process(self, samples: Sequence[Any], preds: Sequence[Any]) -> None:
        self.evaluator.process(samples, preds)
        self.drawer(samples, preds)

    def evaluate(self) -> dict:
        return self.evaluator.evaluate()

    def results(self) -> list:
        return self.evaluator.results()
