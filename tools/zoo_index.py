"""Generate det's model index (presets/zoo/index.yaml) from MMDetection 3.3's configs/*/metafile.yml.

Run with det's python; MMDetection (configs, metafiles, model code) comes from the peer environment
($DET_PEERS_ENV, default ../peers-env):
    .venv/bin/python tools/zoo_index.py              # check every preset, then write the index
    .venv/bin/python tools/zoo_index.py --no-check   # write without building the models

How a checkpoint gets its det preset: PRESETS maps each det preset to one MMDetection config whose
model it is. Every metafile entry (in the folders of those configs) whose config builds the same
model, i.e. an equal `model` dict once `init_cfg` (det: `init`; ImageNet initialisation) and
`data_preprocessor.batch_augments` (training-time augmentation) are removed, gets that preset:
schedules (1x, 2x, 3x, amp) share one preset, anything else that differs needs its own. Entries
that no preset matches are left out (`--verbose` lists them). To add a family (DETR, YOLOX,
RTMDet-Ins, ...) or a variant: write its preset, add one line to PRESETS, rerun.

The check (on by default) holds every preset to its MMDetection config: both models are built, the
tensors must have the same names (after det's conversion rules) and shapes, every norm layer the
same eps and momentum, and both preprocessors the same mean, std and channel order; the model
settings the two write down are compared too. A failing preset stops the generator (exit 1).
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "benchmarks" / "parity"))

# det preset (bundled name) -> the MMDetection config (under configs/) whose model it is
PRESETS: dict[str, str] = {
    "rtmdet_tiny": "rtmdet/rtmdet_tiny_8xb32-300e_coco.py",
    "rtmdet_s": "rtmdet/rtmdet_s_8xb32-300e_coco.py",
    "zoo/rtmdet_m": "rtmdet/rtmdet_m_8xb32-300e_coco.py",
    "zoo/rtmdet_l": "rtmdet/rtmdet_l_8xb32-300e_coco.py",
    "zoo/rtmdet_x": "rtmdet/rtmdet_x_8xb32-300e_coco.py",
    "zoo/retinanet_r18_fpn": "retinanet/retinanet_r18_fpn_1x_coco.py",
    "retinanet_r50_fpn": "retinanet/retinanet_r50_fpn_1x_coco.py",
    "zoo/retinanet_r101_fpn": "retinanet/retinanet_r101_fpn_1x_coco.py",
    "zoo/retinanet_r50-caffe_fpn": "retinanet/retinanet_r50-caffe_fpn_1x_coco.py",
    "zoo/retinanet_r101-caffe_fpn": "retinanet/retinanet_r101-caffe_fpn_1x_coco.py",
    "zoo/retinanet_x101-32x4d_fpn": "retinanet/retinanet_x101-32x4d_fpn_1x_coco.py",
    "zoo/retinanet_x101-64x4d_fpn": "retinanet/retinanet_x101-64x4d_fpn_1x_coco.py",
    "zoo/fcos_r50-caffe_fpn_gn-head": "fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py",
    "zoo/fcos_r101-caffe_fpn_gn-head": "fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py",
    "faster_rcnn": "faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py",
    "zoo/faster-rcnn_r101_fpn": "faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py",
    "zoo/faster-rcnn_r50-caffe_fpn": "faster_rcnn/faster-rcnn_r50-caffe_fpn_1x_coco.py",
    "zoo/faster-rcnn_r101-caffe_fpn": "faster_rcnn/faster-rcnn_r101-caffe_fpn_1x_coco.py",
    "zoo/faster-rcnn_x101-32x4d_fpn": "faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py",
    "zoo/faster-rcnn_x101-64x4d_fpn": "faster_rcnn/faster-rcnn_x101-64x4d_fpn_1x_coco.py",
    "mask_rcnn": "mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py",
    "zoo/mask-rcnn_r101_fpn": "mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py",
    "zoo/mask-rcnn_r50-caffe_fpn": "mask_rcnn/mask-rcnn_r50-caffe_fpn_1x_coco.py",
    "zoo/mask-rcnn_r101-caffe_fpn": "mask_rcnn/mask-rcnn_r101-caffe_fpn_1x_coco.py",
    "zoo/mask-rcnn_x101-32x4d_fpn": "mask_rcnn/mask-rcnn_x101-32x4d_fpn_1x_coco.py",
    "zoo/mask-rcnn_x101-64x4d_fpn": "mask_rcnn/mask-rcnn_x101-64x4d_fpn_1x_coco.py",
    "zoo/mask-rcnn_swin-t-p4-w7_fpn": "swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py",
    "zoo/mask-rcnn_swin-s-p4-w7_fpn": "swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py",
    "cascade_rcnn": "cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py",
    "zoo/cascade-rcnn_r101_fpn": "cascade_rcnn/cascade-rcnn_r101_fpn_1x_coco.py",
    "zoo/cascade-rcnn_r50-caffe_fpn": "cascade_rcnn/cascade-rcnn_r50-caffe_fpn_1x_coco.py",
    "zoo/cascade-rcnn_r101-caffe_fpn": "cascade_rcnn/cascade-rcnn_r101-caffe_fpn_1x_coco.py",
    "zoo/cascade-rcnn_x101-32x4d_fpn": "cascade_rcnn/cascade-rcnn_x101-32x4d_fpn_1x_coco.py",
    "zoo/cascade-rcnn_x101-64x4d_fpn": "cascade_rcnn/cascade-rcnn_x101-64x4d_fpn_1x_coco.py",
    "detr/detr_r50_8xb2-150e_coco": "detr/detr_r50_8xb2-150e_coco.py",
    "deformable_detr/deformable-detr_r50_16xb2-50e_coco": "deformable_detr/deformable-detr_r50_16xb2-50e_coco.py",
    "deformable_detr/deformable-detr-refine_r50_16xb2-50e_coco": "deformable_detr/deformable-detr-refine_r50_16xb2-50e_coco.py",
    "deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco": "deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py",
    "dino/dino-4scale_r50_8xb2-12e_coco": "dino/dino-4scale_r50_8xb2-12e_coco.py",
    "dino/dino-5scale_swin-l_8xb2-12e_coco": "dino/dino-5scale_swin-l_8xb2-12e_coco.py",
    "yolox/yolox_tiny_8xb8-300e_coco": "yolox/yolox_tiny_8xb8-300e_coco.py",
    "yolox/yolox_s_8xb8-300e_coco": "yolox/yolox_s_8xb8-300e_coco.py",
    "yolox/yolox_m_8xb8-300e_coco": "yolox/yolox_m_8xb8-300e_coco.py",
    "yolox/yolox_l_8xb8-300e_coco": "yolox/yolox_l_8xb8-300e_coco.py",
    "yolox/yolox_x_8xb8-300e_coco": "yolox/yolox_x_8xb8-300e_coco.py",
    "yolox/yolox_nano_8xb8-300e_coco": "yolox/yolox_nano_8xb8-300e_coco.py",
    "rtmdet/rtmdet-ins_tiny_8xb32-300e_coco": "rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py",
    "rtmdet/rtmdet-ins_s_8xb32-300e_coco": "rtmdet/rtmdet-ins_s_8xb32-300e_coco.py",
    "rtmdet/rtmdet-ins_m_8xb32-300e_coco": "rtmdet/rtmdet-ins_m_8xb32-300e_coco.py",
    "rtmdet/rtmdet-ins_l_8xb32-300e_coco": "rtmdet/rtmdet-ins_l_8xb32-300e_coco.py",
    "rtmdet/rtmdet-ins_x_8xb16-300e_coco": "rtmdet/rtmdet-ins_x_8xb16-300e_coco.py",
    "solov2/solov2_r50_fpn_1x_coco": "solov2/solov2_r50_fpn_1x_coco.py",
}
TASKS = {"Object Detection": "detect", "Instance Segmentation": "segment", "Multiple Object Tracking": "track"}
HEADER = """# det's model index: MMDetection {version}'s COCO checkpoints that det's presets run exactly.
# Generated by tools/zoo_index.py from configs/*/metafile.yml; do not edit: rerun the generator.
"""


def canonical_model(cfg_model: Any) -> Any:
    """The model dict without what does not change the trained network's computation."""
    model = copy.deepcopy(_plain(cfg_model))

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("init_cfg", "init")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    model = strip(model)
    model.get("data_preprocessor", {}).pop("batch_augments", None)
    return model


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return node


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(node, list) and any(isinstance(v, (dict, list)) for v in node):
        out = {}
        for i, v in enumerate(node):
            out.update(flatten(v, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: node}


def load_config(Config, cfg_dir: Path, rel: str) -> Any:
    # custom_imports (mmpretrain backbones, ...) are not needed to read a model dict
    return Config.fromfile(str(cfg_dir / rel), import_custom_modules=False)


def metafile_entries(cfg_dir: Path, folders: list[str]) -> list[tuple[str, dict]]:
    """(folder, metafile model entry) for every entry with weights and COCO results."""
    out = []
    for folder in folders:
        meta = yaml.safe_load((cfg_dir / folder / "metafile.yml").read_text())
        collections = {c["Name"]: c for c in meta.get("Collections") or []}
        for entry in meta.get("Models") or []:
            results = [r for r in entry.get("Results") or [] if r.get("Dataset") == "COCO"]
            if entry.get("Weights") and results and entry.get("Config"):
                entry["_collection"] = collections.get(entry.get("In Collection"), {})
                out.append((folder, entry))
    return out


def index_entry(entry: dict, preset: str, family: str, params: float) -> dict[str, Any]:
    """One index row from a metafile entry."""
    from det.core.zoo.download import hash_prefix_of

    metrics: dict[str, Any] = {}
    tasks = []
    for result in entry["Results"]:
        if result.get("Dataset") != "COCO":
            continue
        task = TASKS.get(result.get("Task"))
        if task and task not in tasks:
            tasks.append(task)
        metrics.update(result.get("Metrics") or {})
    row = {
        "name": entry["Name"], "family": family, "preset": preset, "config": entry["Config"],
        "weights": entry["Weights"], "hash": hash_prefix_of(entry["Weights"]), "tasks": tasks,
        "box_ap": metrics.get("box AP"), "mask_ap": metrics.get("mask AP"), "params_m": params,
    }
    if entry.get("Alias"):
        row["aliases"] = list(entry["Alias"]) if isinstance(entry["Alias"], list) else [entry["Alias"]]
    return row


def family_of(preset_model: dict) -> str:
    return str(preset_model["type"])


def params_of(model_cfg: dict) -> float:
    from det.core.models import build_detector

    model = build_detector(model_cfg)
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "presets" / "zoo" / "index.yaml"))
    parser.add_argument("--no-check", action="store_true", help="skip building and comparing the models")
    parser.add_argument("--verbose", action="store_true", help="list the checkpoints no preset matches")
    args = parser.parse_args()
    from mmdet_peer import load_mmdet

    from det.core.config import load_preset

    peer = load_mmdet()
    if peer is None:
        print("MMDetection (peer environment) not found: set DET_PEERS_ENV", file=sys.stderr)
        return 2
    MODELS, Config, cfg_dir = peer
    cfg_dir = Path(cfg_dir)
    import mmdet

    failures = []
    by_model, presets = [], {}
    for preset, rel in PRESETS.items():
        mm_model = canonical_model(load_config(Config, cfg_dir, rel).model.to_dict())
        det_cfg = load_preset(preset)
        presets[preset] = det_cfg
        by_model.append((mm_model, preset))
        if not args.no_check:
            from zoo_check import check_preset

            problems = check_preset(MODELS, load_config(Config, cfg_dir, rel), det_cfg, mm_model)
            print(f"{preset} vs {rel}: {'ok' if not problems else '; '.join(problems)}", file=sys.stderr)
            failures += [f"{preset}: {p}" for p in problems]
    if failures:
        print(f"{len(failures)} problem(s): presets differ from MMDetection's models; index not written", file=sys.stderr)
        return 1
    rows, left_out, params = [], [], {}
    folders = sorted({rel.split("/")[0] for rel in PRESETS.values()})
    for folder, entry in metafile_entries(cfg_dir, folders):
        rel = entry["Config"].split("configs/", 1)[-1]
        model = canonical_model(load_config(Config, cfg_dir, rel).model.to_dict())
        match = next((p for m, p in by_model if m == model), None)
        if match is None:
            left_out.append(entry["Name"])
            continue
        if match not in params:
            params[match] = params_of(presets[match]["model"])
        rows.append(index_entry(entry, match, family_of(presets[match]["model"]), params[match]))
    write_index(Path(args.out), rows, mmdet.__version__)
    counts = {}
    for row in rows:
        counts[row["family"]] = counts.get(row["family"], 0) + 1
    print(f"{args.out}: {len(rows)} checkpoints ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}); "
          f"{len(left_out)} in those folders have no det preset", file=sys.stderr)
    if args.verbose:
        print("no preset: " + ", ".join(left_out), file=sys.stderr)
    return 0


def write_index(path: Path, rows: list[dict], version: str) -> None:
    from det.core.fileio import atomic_write_text

    body = yaml.safe_dump({"source": f"mmdetection {version}", "models": rows}, sort_keys=False, width=200)
    atomic_write_text(path, HEADER.format(version=version) + body)


if __name__ == "__main__":
    sys.exit(main())
