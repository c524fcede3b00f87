"""What every dense head shares: train/test settings, ground truth gathering, multi-level
flattening and post-processing (score threshold, nms_pre, batched NMS, max_per_img, mapping
boxes back to the original image)."""
from __future__ import annotations

import dataclasses
from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from det.core.config.build import build, check_keys, config_path
from det.core.errors import ConfigError
from det.core.models._ops import batched_nms, batched_soft_nms
from det.core.models.layers import ConvModule, bias_init_with_prob, normal_init
from det.core.models.task import ASSIGNERS, SAMPLERS, PseudoSampler
from det.core.structures import DetSample, Instances


@dataclass
class NmsSettings:
    """Post-processing settings read from a preset mapping: each field of a subclass is a key,
    except `iou_threshold` and `soft`, which come from its `nms: {type, iou_threshold, ...}`."""

    iou_threshold: float = 0.5
    soft: dict | None = None
    class_agnostic: bool = False  # one NMS over all classes (`nms: {class_agnostic: true}`)

    @classmethod
    def parse(cls, cfg: dict | None) -> Any:
        keys = {f.name for f in dataclasses.fields(cls)} - {"iou_threshold", "soft", "class_agnostic"}
        cfg = check_keys(cfg, keys | {"nms"})
        return apply_nms_cfg(cls(**{k: v for k, v in cfg.items() if k != "nms"}), cfg.get("nms"))


@dataclass
class TestSettings(NmsSettings):
    """Post-processing settings of a dense head (`model.test_cfg`)."""

    score_thr: float = 0.05
    nms_pre: int = 1000
    max_per_img: int = 100
    min_bbox_size: float = 0.0


NMS_KEYS = {"nms": {"type", "iou_threshold", "class_agnostic"},
            "soft_nms": {"type", "iou_threshold", "sigma", "min_score", "method", "class_agnostic"}}


def apply_nms_cfg(settings: Any, nms: dict | None) -> Any:
    """Read a `nms: {type: nms | soft_nms, iou_threshold: T, ...}` mapping (every head and the
    RPN parse it here) into `settings.iou_threshold` and `settings.soft` (None for hard NMS,
    else soft-NMS's sigma, min_score and method)."""
    kind = (nms or {}).get("type", "nms")
    if kind not in NMS_KEYS:
        raise ConfigError(f"{config_path('nms', 'type')}: expected nms or soft_nms, got '{kind}'")
    nms = check_keys(nms or {}, NMS_KEYS[kind], "nms")
    settings.iou_threshold = float(nms.get("iou_threshold", settings.iou_threshold))
    settings.soft = None
    settings.class_agnostic = bool(nms.get("class_agnostic", False))
    if kind == "soft_nms":
        method = nms.get("method", "linear")
        if method not in ("linear", "gaussian"):
            raise ConfigError(f"{config_path('nms', 'method')}: expected linear or gaussian, got {method!r}")
        settings.soft = {"sigma": float(nms.get("sigma", 0.5)), "min_score": float(nms.get("min_score", 1e-3)),
                         "method": method}
    return settings


def run_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, settings: Any,
            max_num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept indices, their scores) by hard or soft NMS per `idxs` group, best first, at most
    `max_num`; soft-NMS returns the decayed scores."""
    soft = getattr(settings, "soft", None)
    if getattr(settings, "class_agnostic", False):
        idxs = torch.zeros_like(idxs)
    if soft is None:
        keep = batched_nms(boxes, scores, idxs, settings.iou_threshold)[:max_num]
        return keep, scores[keep]
    keep, new_scores = batched_soft_nms(boxes, scores, idxs, settings.iou_threshold, **soft)
    return keep[:max_num], new_scores[:max_num].to(scores.dtype)


def reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of `value` over distributed ranks (itself when not distributed), so loss
    normalisers match a single process with the same total batch."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value.div_(dist.get_world_size()), op=dist.ReduceOp.SUM)
    return value


def gt_of(sample: DetSample, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(boxes, labels, ignored boxes) of one sample on `device`; ignored instances are split out."""
    gt = sample.gt
    boxes = gt.bboxes.to(device=device, dtype=torch.float32).reshape(-1, 4)
    labels = gt.labels.to(device=device, dtype=torch.long).reshape(-1)
    if gt.ignore is not None and len(gt.ignore):
        ign = gt.ignore.to(device=device, dtype=torch.bool)
        return boxes[~ign], labels[~ign], boxes[ign]
    return boxes, labels, boxes.new_zeros((0, 4))


def flatten_levels(maps: Sequence[torch.Tensor], channels: int) -> torch.Tensor:
    """[(B, A*C, H, W)] per level -> (B, sum(H*W*A), C) in prior order."""
    b = maps[0].size(0)
    return torch.cat([m.permute(0, 2, 3, 1).reshape(b, -1, channels) for m in maps], dim=1)


class DenseHead(nn.Module, metaclass=ABCMeta):
    """Base of single-stage heads. A head must implement `forward(feats)` (per-level outputs,
    class scores first), `loss_by_feat(*outs, samples)` and `decode_level` (per-level boxes
    for post-processing); a head that cannot be built without them fails at construction.
    `level_scores` and `level_priors` have sigmoid / prior-generator defaults."""

    @abstractmethod
    def forward(self, feats: Sequence[torch.Tensor]) -> tuple:
        """Per-level outputs of the head for a batch of feature maps."""

    @abstractmethod
    def loss_by_feat(self, *outs: Any, samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        """Losses from the head's outputs and the samples' ground truth."""

    @abstractmethod
    def decode_level(self, outs: list[torch.Tensor], priors: torch.Tensor, prior_idx: torch.Tensor, level: int,
                     img_shape: tuple[int, int]) -> torch.Tensor:
        """(K, 4) boxes of the kept priors of one level of one image."""

    num_classes: int

    train_keys: frozenset[str] = frozenset()  # train_cfg keys besides assigner/sampler
    default_assigner: dict | None = None

    def build_towers(self, in_channels: int, feat_channels: int, stacked_convs: int, **conv_kw: Any) -> None:
        """`cls_convs` and `reg_convs`: `stacked_convs` 3x3 ConvModules each."""
        self.cls_convs, self.reg_convs = nn.ModuleList(), nn.ModuleList()
        for i in range(stacked_convs):
            chn = in_channels if i == 0 else feat_channels
            self.cls_convs.append(ConvModule(chn, feat_channels, 3, padding=1, **conv_kw))
            self.reg_convs.append(ConvModule(chn, feat_channels, 3, padding=1, **conv_kw))

    def run_towers(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One level's features through `cls_convs` and `reg_convs`."""
        c, r = x, x
        for conv in self.cls_convs:
            c = conv(c)
        for conv in self.reg_convs:
            r = conv(r)
        return c, r

    def init_convs(self, *cls_layers: nn.Module) -> None:
        """N(0, 0.01) weights for every conv; classifiers' biases set for a 0.01 prior probability."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, std=0.01)
        for layer in cls_layers:
            normal_init(layer, std=0.01, bias=bias_init_with_prob(0.01))

    def set_train_cfg(self, train_cfg: dict | None) -> None:
        """Parse `train_cfg` (assigner, sampler, head-specific keys); errors name the keys
        relative to the current preset path (the detector sets it to `model.train_cfg`).
        MMDetection keys det ignores (det.core.config.compat) warn once."""
        from det.core.config.compat import drop_ignored

        train_cfg = drop_ignored(train_cfg, type(self).__name__)
        train_cfg = check_keys(train_cfg, set(self.train_keys) | {"assigner", "sampler"}, "")
        self.train_cfg = train_cfg
        assigner_cfg = train_cfg.get("assigner", self.default_assigner)
        self.assigner = build(assigner_cfg, ASSIGNERS, "assigner") if assigner_cfg is not None else None
        self.sampler = build(train_cfg["sampler"], SAMPLERS, "sampler") if train_cfg.get("sampler") else PseudoSampler()

    def set_test_cfg(self, test_cfg: dict | None) -> None:
        """Parse `test_cfg` (score_thr, nms_pre, nms, max_per_img, min_bbox_size)."""
        self.test_cfg = TestSettings.parse(test_cfg)

    def loss(self, feats: Sequence[torch.Tensor], samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        return self.loss_by_feat(*self(feats), samples=samples)

    def predict(self, feats: Sequence[torch.Tensor], samples: Sequence[DetSample],
                rescale: bool = True) -> list[Instances]:
        return self.predict_by_feat(*self(feats), samples=samples, rescale=rescale)

    def predict_by_feat(self, *outs: Sequence[torch.Tensor], samples: Sequence[DetSample],
                        rescale: bool = True) -> list[Instances]:
        cls_scores = outs[0]
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        priors = self.level_priors(featmap_sizes, cls_scores[0].dtype, cls_scores[0].device)
        results = []
        for i, sample in enumerate(samples):
            per_level = [[o[level][i] for o in outs] for level in range(len(cls_scores))]
            results.append(self._predict_single(per_level, priors, sample, rescale))
        return results

    def _predict_single(self, per_level: list[list[torch.Tensor]], priors: list[torch.Tensor],
                        sample: DetSample, rescale: bool) -> Instances:
        cfg = self.test_cfg
        img_shape = sample.input_shape
        all_boxes, all_scores, all_labels = [], [], []
        for level, outs in enumerate(per_level):
            scores, factor = self.level_scores(outs)  # (N, C), (N,) or None
            flat = scores.reshape(-1)
            keep = flat > cfg.score_thr
            flat = flat[keep]
            idx = keep.nonzero().squeeze(1)
            if cfg.nms_pre > 0 and flat.numel() > cfg.nms_pre:
                flat, order = flat.topk(cfg.nms_pre)
                idx = idx[order]
            prior_idx = idx // scores.size(1)
            labels = idx % scores.size(1)
            boxes = self.decode_level(outs, priors[level], prior_idx, level, img_shape)
            if factor is not None:
                flat = flat * factor[prior_idx]
            all_boxes.append(boxes)
            all_scores.append(flat)
            all_labels.append(labels)
        boxes = torch.cat(all_boxes).float()
        scores = torch.cat(all_scores).float()
        labels = torch.cat(all_labels)
        # As MMDetection: min_bbox_size >= 0 (0 included) drops degenerate boxes (w or h <= 0).
        if cfg.min_bbox_size >= 0 and boxes.numel():
            wh = boxes[:, 2:] - boxes[:, :2]
            ok = (wh[:, 0] > cfg.min_bbox_size) & (wh[:, 1] > cfg.min_bbox_size)
            boxes, scores, labels = boxes[ok], scores[ok], labels[ok]
        if boxes.numel():
            keep, scores = run_nms(boxes, scores, labels, cfg, cfg.max_per_img)
            boxes, labels = boxes[keep], labels[keep]
        if rescale:
            boxes = sample.boxes_to_original(boxes)
        return Instances(bboxes=boxes, labels=labels, scores=scores)

    def level_priors(self, featmap_sizes: list[tuple[int, int]], dtype: torch.dtype,
                     device: torch.device) -> list[torch.Tensor]:
        return self.prior_generator.grid_priors(featmap_sizes, dtype=torch.float32, device=device)

    def level_scores(self, outs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(num_priors, num_classes) sigmoid scores of one level of one image, plus a score
        factor multiplied in after thresholding (FCOS centerness) or None."""
        cls = outs[0]
        return cls.permute(1, 2, 0).reshape(-1, self.num_classes).sigmoid(), None
