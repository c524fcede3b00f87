"""Panoptic FPN's fusion (MMDetection's HeuristicFusionHead): instance masks are laid by score,
a mask overlapping already-laid ones by more than `mask_overlap` of its area is dropped, the
rest fill free pixels; other pixels take the semantic head's argmax stuff class; the 'things'
class of the semantic head and stuff regions under `stuff_area_limit` pixels become VOID.
Instances below the RoI head's `score_thr` never reach it (that is the instance threshold)."""
from __future__ import annotations

import torch

from det.core.config.build import check_keys
from det.core.structures import Instances
from det.core.structures.panoptic import PanopticPrediction


class HeuristicFusionHead:
    """Fuses `Instances` (original-image masks) and semantic logits into a `PanopticPrediction`."""

    def __init__(self, num_things_classes: int = 80, num_stuff_classes: int = 53,
                 test_cfg: dict | None = None) -> None:
        cfg = check_keys(test_cfg, {"mask_overlap", "stuff_area_limit"}, owner="test_cfg.panoptic")
        self.num_things_classes, self.num_stuff_classes = num_things_classes, num_stuff_classes
        self.num_classes = num_things_classes + num_stuff_classes
        self.mask_overlap = float(cfg.get("mask_overlap", 0.5))
        self.stuff_area_limit = int(cfg.get("stuff_area_limit", 4096))

    def lay_masks(self, inst: Instances, shape: tuple[int, int]) -> tuple[torch.Tensor, list[int]]:
        """(H, W) map of laid instances (k + 1 for the k-th kept, 0 free) and the kept indices."""
        id_map = torch.zeros(shape, dtype=torch.long)
        kept: list[int] = []
        if not len(inst) or inst.masks is None:
            return id_map, kept
        masks = torch.as_tensor(inst.masks).bool().cpu()
        for idx in torch.argsort(-inst.scores.float().cpu()).tolist():
            mask = masks[idx]
            area = int(mask.sum())
            if area == 0:
                continue
            pasted = id_map > 0
            if int((mask & pasted).sum()) / (area + 1e-5) > self.mask_overlap:
                continue
            kept.append(idx)
            id_map[mask & ~pasted] = len(kept)
        return id_map, kept

    def predict_one(self, inst: Instances, seg_logits: torch.Tensor) -> PanopticPrediction:
        sem = seg_logits.argmax(0).cpu()  # stuff k, or num_stuff = things
        id_map, kept = self.lay_masks(inst, tuple(sem.shape))
        seg_map = torch.zeros_like(id_map)
        segments = []
        for k, idx in enumerate(kept, start=1):
            segments.append({"id": k, "label": int(inst.labels[idx]), "isthing": True,
                             "score": float(inst.scores[idx])})
        seg_map[id_map > 0] = id_map[id_map > 0]
        free = id_map == 0
        for stuff in range(self.num_stuff_classes):
            region = free & (sem == stuff)
            if int(region.sum()) < max(self.stuff_area_limit, 1):
                continue
            seg_id = len(segments) + 1
            seg_map[region] = seg_id
            segments.append({"id": seg_id, "label": self.num_things_classes + stuff, "isthing": False,
                             "score": 1.0})
        return PanopticPrediction(seg_map.numpy(), segments)

    def predict(self, instances: list[Instances], seg_logits: list[torch.Tensor]) -> list[PanopticPrediction]:
        return [self.predict_one(i, s) for i, s in zip(instances, seg_logits)]
