"""Model weights from other toolkits onto det's modules.

- MMDetection: det's ResNet, FPN, CSPNeXt, CSPNeXtPAFPN, RetinaHead, FCOSHead and
  RTMDetSepBNHead use MMDetection's module names, so an MMDetection checkpoint of a model det
  ships maps key for key; what is renamed or dropped is listed in `MMDET_RULES` (MOT checkpoints
  such as ByteTrack's lose their `detector.` prefix). The result is
  checked against the det model built from the preset (every tensor's shape), and the report
  names the checkpoint keys nothing used and the det keys nothing filled.
- torchvision: ImageNet classifiers `resnet18/34/50/101/152` map onto det's ResNet (same names,
  `fc.*` dropped) under a prefix (`backbone.` by default, ready for `--load-from`); the detection
  models `retinanet_resnet50_fpn`, `fcos_resnet50_fpn` and `fasterrcnn_resnet50_fpn` map onto
  det's RetinaNet, FCOS and Faster R-CNN (the preset must express torchvision's variant, see
  TORCHVISION_VARIANT; torchvision's 91 COCO-id class channels are reduced to the 80 COCO
  classes, with the background row moved last for Faster R-CNN).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from det.core.convert.checkpoints import load_foreign_checkpoint, state_dict_of
from det.core.errors import DetError
from det.core.fileio import atomic_torch_save, ensure_new
from det.core.log import get_logger

# (pattern, replacement) applied in order; replacement None drops the key.
MMDET_RULES: list[tuple[str, str | None]] = [
    # MOT models (ByteTrack, ...) hold their detector under `detector.`; det's MOT presets are that
    # detector plus a `tracker` section, which has no weights
    (r"^(module\.)?detector\.(?!data_preprocessor\.)", ""),
    (r"^module\.(?!data_preprocessor\.|ema_)", ""),  # saved from a (Distributed)DataParallel wrapper
    (r"^(module\.)?(detector\.)?data_preprocessor\.", None),  # mean/std live in the preset, not in the weights
    (r"^(module\.)?ema_", None),  # MMEngine's EMA copy (the main state_dict already holds the averaged weights)
]

# The 80 COCO category ids in det's class order (torchvision indexes logits by category id).
COCO_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31,
            32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58,
            59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]


def rename(state: dict, rules: list[tuple[str, str | None]]) -> tuple[dict, list[str]]:
    """Apply the first matching rule to each key; -> (renamed state, dropped keys)."""
    out, dropped = {}, []
    for key, value in state.items():
        new: str | None = key
        for pattern, repl in rules:
            if re.search(pattern, key):
                new = None if repl is None else re.sub(pattern, repl, key)
                break
        if new is None:
            dropped.append(key)
        else:
            out[new] = value
    return out, dropped


def match_to_model(state: dict, model_state: dict, source: str) -> dict[str, list[str]]:
    """Compare converted tensors with the det model: shapes must agree; lists what is left over."""
    mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs det {tuple(model_state[k].shape)}"
                  for k, v in state.items() if k in model_state and tuple(v.shape) != tuple(model_state[k].shape)]
    if mismatched:
        shown = "; ".join(mismatched[:3]) + (f"; ... ({len(mismatched)} in all)" if len(mismatched) > 3 else "")
        raise DetError(f"{source}: tensor shapes do not match the preset's model ({shown})")
    return {
        "unmapped": sorted(k for k in state if k not in model_state),
        "missing": sorted(k for k in model_state if k not in state and not k.endswith("num_batches_tracked")),
    }


def _model_state(preset: dict) -> dict:
    from det.core.models import build_detector

    if "model" not in preset:
        raise DetError("preset has no 'model' section")
    return build_detector(preset["model"]).state_dict()


def _finish(state: dict, report: dict, out: str | Path, preset: dict | None, meta: dict, strict: bool,
            force: bool, source: str, allow_empty: bool = False) -> dict:
    if not state and not allow_empty:
        raise DetError(f"{source}: no tensor maps onto the model ({len(report.get('unmapped', []))} unmapped, "
                       f"{len(report.get('dropped', []))} dropped); nothing written (--allow-empty writes it anyway)")
    if strict and (report["unmapped"] or report["missing"]):
        raise DetError(f"{source}: {len(report['unmapped'])} unmapped and {len(report['missing'])} missing keys "
                       f"(first: {(report['unmapped'] + report['missing'])[0]}); rerun without --strict to see them all")
    log = get_logger()
    for what in ("unmapped", "missing", "dropped"):
        items = report.get(what, [])
        if items:
            shown = ", ".join(items[:6]) + (f", ... ({len(items)} in all)" if len(items) > 6 else "")
            log.warning(f"{source}: {len(items)} {what} key(s): {shown}")
    out = ensure_new(out, force)
    payload: dict[str, Any] = {"state_dict": {k: v.detach().cpu().contiguous() for k, v in state.items()}, "meta": meta}
    if preset is not None:
        payload["preset"] = preset
    atomic_torch_save(out, payload)
    return {"file": str(out), "tensors": len(state), **{k: v for k, v in report.items()}}


def _load_preset(preset: str | Path | None, overrides: list[str] | None = None) -> dict | None:
    if preset is None:
        return None
    from det.core.config import load_preset

    return load_preset(preset, overrides or [])


def convert_mmdet_weights(src: str | Path, out: str | Path, preset: str | Path, strict: bool = False,
                          force: bool = False, overrides: list[str] | None = None, allow_empty: bool = False) -> dict:
    """MMDetection checkpoint -> det checkpoint for the model of `preset`."""
    ckpt = load_foreign_checkpoint(src)
    state, dropped = rename(state_dict_of(ckpt, src), MMDET_RULES)
    resolved = _load_preset(preset, overrides)
    report = match_to_model(state, _model_state(resolved), str(src))
    state = {k: v for k, v in state.items() if k not in report["unmapped"]}
    meta: dict[str, Any] = {"source": str(src), "converted_from": "mmdetection"}
    classes = _mmdet_classes(ckpt)
    if classes:
        meta["classes"] = classes
    return _finish(state, {**report, "dropped": dropped}, out, resolved, meta, strict, force, str(src), allow_empty)


def _mmdet_classes(ckpt: Any) -> list[str] | None:
    meta = ckpt.get("meta") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict):
        return None
    for holder in (meta.get("dataset_meta"), meta):
        if isinstance(holder, dict):
            classes = holder.get("classes") or holder.get("CLASSES")
            if isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes):
                return list(classes)
    return None


# ----------------------------------------------------------------------------------- torchvision


def torchvision_kind(state: dict) -> str:
    """'resnet', 'retinanet', 'fcos' or 'faster_rcnn' from the key names."""
    if any(k.startswith("roi_heads.box_predictor.") for k in state):
        if any(k.startswith("roi_heads.mask_") for k in state):
            raise DetError("torchvision Mask R-CNN weights are not supported (Faster R-CNN, RetinaNet, FCOS and ResNet are)")
        return "faster_rcnn"
    if any(k.startswith("head.classification_head.cls_logits") for k in state):
        return "fcos" if any(k.startswith("head.regression_head.bbox_ctrness") for k in state) else "retinanet"
    if "conv1.weight" in state and any(k.startswith("layer1.") for k in state):
        return "resnet"
    raise DetError("not a torchvision ResNet, RetinaNet or FCOS state dict (unknown key layout: "
                   f"{', '.join(list(state)[:4])}, ...)")


def resnet_rules(prefix: str) -> list[tuple[str, str | None]]:
    return [(r"^fc\.", None), (r"^", prefix)]


def _fpn_rules() -> list[tuple[str, str | None]]:
    return [
        (r"^backbone\.body\.", "backbone."),
        (r"^backbone\.fpn\.inner_blocks\.(\d+)\.0\.", r"neck.lateral_convs.\1.conv."),
        (r"^backbone\.fpn\.layer_blocks\.(\d+)\.0\.", r"neck.fpn_convs.\1.conv."),
    ]


def _extra_rules(num_levels: int) -> list[tuple[str, str | None]]:
    return [(r"^backbone\.fpn\.extra_blocks\.p6\.", f"neck.fpn_convs.{num_levels}.conv."),
            (r"^backbone\.fpn\.extra_blocks\.p7\.", f"neck.fpn_convs.{num_levels + 1}.conv.")]


def retinanet_rules() -> list[tuple[str, str | None]]:
    # torchvision's head convs are Conv2dNormActivation without norm: Sequential(conv, relu) -> `.0`
    return _fpn_rules() + _extra_rules(3) + [
        (r"^head\.classification_head\.conv\.(\d+)\.0\.", r"bbox_head.cls_convs.\1.conv."),
        (r"^head\.regression_head\.conv\.(\d+)\.0\.", r"bbox_head.reg_convs.\1.conv."),
        (r"^head\.classification_head\.cls_logits\.", "bbox_head.retina_cls."),
        (r"^head\.regression_head\.bbox_reg\.", "bbox_head.retina_reg."),
    ]


def fcos_rules() -> list[tuple[str, str | None]]:
    # Conv2d, GroupNorm, ReLU repeated: index 3i is the conv, 3i + 1 its norm.
    def conv_rules(branch: str, target: str) -> list[tuple[str, str | None]]:
        rules: list[tuple[str, str | None]] = []
        for i in range(4):
            rules += [(rf"^head\.{branch}\.conv\.{3 * i}\.", f"bbox_head.{target}.{i}.conv."),
                      (rf"^head\.{branch}\.conv\.{3 * i + 1}\.", f"bbox_head.{target}.{i}.gn.")]
        return rules

    return _fpn_rules() + _extra_rules(3) + conv_rules("classification_head", "cls_convs") + \
        conv_rules("regression_head", "reg_convs") + [
        (r"^head\.classification_head\.cls_logits\.", "bbox_head.conv_cls."),
        (r"^head\.regression_head\.bbox_reg\.", "bbox_head.conv_reg."),
        (r"^head\.regression_head\.bbox_ctrness\.", "bbox_head.conv_centerness."),
    ]


def faster_rcnn_rules() -> list[tuple[str, str | None]]:
    return _fpn_rules() + [
        (r"^rpn\.head\.conv\.0\.0\.", "rpn_head.rpn_conv."),
        (r"^rpn\.head\.conv\.", "rpn_head.rpn_conv."),  # torchvision < 0.13: a bare Conv2d
        (r"^rpn\.head\.cls_logits\.", "rpn_head.rpn_cls."),
        (r"^rpn\.head\.bbox_pred\.", "rpn_head.rpn_reg."),
        (r"^roi_heads\.box_head\.fc6\.", "roi_head.bbox_head.shared_fcs.0."),
        (r"^roi_heads\.box_head\.fc7\.", "roi_head.bbox_head.shared_fcs.1."),
        (r"^roi_heads\.box_predictor\.cls_score\.", "roi_head.bbox_head.fc_cls."),
        (r"^roi_heads\.box_predictor\.bbox_pred\.", "roi_head.bbox_head.fc_reg."),
    ]


def select_class_channels(weight, num_anchors: int, num_in: int, ids: list[int]):
    """(A * num_in, ...) class logits indexed [anchor, class id] -> (A * len(ids), ...)."""
    import torch

    shaped = weight.reshape(num_anchors, num_in, *weight.shape[1:])
    picked = shaped[:, torch.as_tensor(ids)]
    return picked.reshape(num_anchors * len(ids), *weight.shape[1:]).contiguous()


# What a det preset must say to compute what torchvision's detection models compute; module
# names and shapes cannot tell these apart, so they are checked on the preset itself.
TORCHVISION_VARIANT = {
    "retinanet": {"neck.add_extra_convs": "on_output", "neck.relu_before_extra_convs": True},
    # torchvision pools RoIs with MultiScaleRoIAlign: aligned=False, sampling_ratio=2
    "faster_rcnn": {"roi_head.bbox_roi_extractor.roi_layer.aligned": False,
                    "roi_head.bbox_roi_extractor.roi_layer.sampling_ratio": 2},
    "fcos": {"neck.add_extra_convs": "on_output", "neck.relu_before_extra_convs": True,
             "bbox_head.norm_on_bbox": True, "bbox_head.centerness_on_reg": True, "bbox_head.conv_bias": True,
             "bbox_head.norm_cfg.num_groups": 32},
}


def check_torchvision_variant(kind: str, preset: dict) -> None:
    wrong = []
    for dotted, want in TORCHVISION_VARIANT.get(kind, {}).items():
        node: Any = preset.get("model", {})
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node != want:
            wrong.append(f"model.{dotted}={want}")
    if wrong:
        raise DetError(f"the preset does not express torchvision's {kind}: set {' '.join(wrong)} (e.g. with --set)")


def convert_torchvision_weights(src: str | Path, out: str | Path, preset: str | Path | None = None,
                                prefix: str = "backbone.", strict: bool = False, force: bool = False,
                                overrides: list[str] | None = None, allow_empty: bool = False) -> dict:
    """torchvision state dict (ResNet classifier, RetinaNet, FCOS or Faster R-CNN) -> det checkpoint."""
    import torch

    ckpt = load_foreign_checkpoint(src)
    raw = state_dict_of(ckpt, src)
    kind = torchvision_kind(raw)
    meta: dict[str, Any] = {"source": str(src), "converted_from": f"torchvision {kind}"}
    if kind == "resnet":
        state, dropped = rename(raw, resnet_rules(prefix))
    elif kind == "faster_rcnn":
        state, dropped = rename(raw, faster_rcnn_rules())
        if state["roi_head.bbox_head.fc_cls.bias"].numel() == 91:
            # torchvision: row 0 background, rows indexed by COCO id; det: 80 classes, background last
            for part in ("weight", "bias"):
                cls = state[f"roi_head.bbox_head.fc_cls.{part}"]
                state[f"roi_head.bbox_head.fc_cls.{part}"] = cls[COCO_IDS + [0]].contiguous()
                reg = state[f"roi_head.bbox_head.fc_reg.{part}"]
                per_class = reg.reshape(91, 4, *reg.shape[1:])[torch.as_tensor(COCO_IDS)]
                state[f"roi_head.bbox_head.fc_reg.{part}"] = per_class.reshape(-1, *reg.shape[1:]).contiguous()
            meta["class_ids"] = COCO_IDS
    else:
        state, dropped = rename(raw, retinanet_rules() if kind == "retinanet" else fcos_rules())
        cls_key = "bbox_head.retina_cls" if kind == "retinanet" else "bbox_head.conv_cls"
        in_classes = state[f"{cls_key}.bias"].numel()
        anchors = 9 if kind == "retinanet" else 1
        if in_classes == anchors * 91:  # torchvision's COCO head: logits indexed by category id
            for part in ("weight", "bias"):
                state[f"{cls_key}.{part}"] = select_class_channels(state[f"{cls_key}.{part}"], anchors, 91, COCO_IDS)
            meta["class_ids"] = COCO_IDS
    resolved = _load_preset(preset, overrides)
    report = {"unmapped": [], "missing": []}
    if resolved is not None:
        if kind != "resnet":
            check_torchvision_variant(kind, resolved)
        report = match_to_model(state, _model_state(resolved), str(src))
        state = {k: v for k, v in state.items() if k not in report["unmapped"]}
    elif kind != "resnet":
        raise DetError(f"{src}: a torchvision {kind} needs --preset (the det model it maps onto)")
    return _finish(state, {**report, "dropped": dropped}, out, resolved, meta, strict, force, str(src), allow_empty)
