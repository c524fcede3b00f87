"""DINO's decoder (query positions from the reference boxes, look-forward-twice references) and
its contrastive denoising query generator."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from det.core.models.transformer.deformable_layers import DeformableDetrTransformerDecoder, inverse_sigmoid
from det.core.structures.boxes import xyxy_to_cxcywh


class MLP(nn.Module):
    """Linear layers with ReLU between them (`layers.{i}` as MMDetection)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip(dims, dims[1:] + [output_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < len(self.layers) - 1 else layer(x)
        return x


def coordinate_to_encoding(coords: torch.Tensor, num_feats: int = 128, temperature: int = 10000,
                           scale: float = 2 * math.pi) -> torch.Tensor:
    """Sine encoding of (x, y[, w, h]) in [0, 1] -> (..., 2|4 * num_feats), ordered y, x, w, h."""
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=coords.device)
    dim_t = temperature ** (2 * (dim_t // 2) / num_feats)

    def enc(v: torch.Tensor) -> torch.Tensor:
        p = (v * scale)[..., None] / dim_t
        return torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=-1).flatten(-2)

    parts = [enc(coords[..., 1]), enc(coords[..., 0])]
    if coords.size(-1) == 4:
        parts += [enc(coords[..., 2]), enc(coords[..., 3])]
    return torch.cat(parts, -1)


class DinoTransformerDecoder(DeformableDetrTransformerDecoder):
    """Returns (normed states (layers, B, Q, C), references (layers + 1, B, Q, 4)): the initial
    references, then each layer's refined boxes before detaching (look forward twice)."""

    def __init__(self, num_layers: int, layer_cfg: dict | None = None, return_intermediate: bool = True) -> None:
        super().__init__(num_layers, layer_cfg, return_intermediate)
        self.ref_point_head = MLP(self.embed_dims * 2, self.embed_dims, self.embed_dims, 2)
        self.norm = nn.LayerNorm(self.embed_dims)

    def forward(self, query, value, key_padding_mask, self_attn_mask, reference_points, spatial_shapes,
                level_start_index, valid_ratios, reg_branches):
        states, refs = [], [reference_points]
        ratios = torch.cat([valid_ratios, valid_ratios], -1)[:, None]
        for i, layer in enumerate(self.layers):
            ref_input = reference_points[:, :, None] * ratios
            query_pos = self.ref_point_head(coordinate_to_encoding(ref_input[:, :, 0, :], self.embed_dims // 2))
            query = layer(query, query_pos, value, key_padding_mask, ref_input, spatial_shapes, level_start_index,
                          self_attn_mask=self_attn_mask)
            new_refs = (reg_branches[i](query) + inverse_sigmoid(reference_points, eps=1e-3)).sigmoid()
            reference_points = new_refs.detach()
            states.append(self.norm(query))
            refs.append(new_refs)
        return torch.stack(states), torch.stack(refs)


class CdnQueryGenerator(nn.Module):
    """Contrastive denoising queries: per group, a positive (small noise) and a negative (larger
    noise) copy of every gt box with label noise; an attention mask keeps groups apart and hides
    them from the matching queries. `generator` makes the noise reproducible."""

    def __init__(self, num_classes: int, embed_dims: int, num_matching_queries: int, label_noise_scale: float = 0.5,
                 box_noise_scale: float = 1.0, group_cfg: dict | None = None) -> None:
        super().__init__()
        self.num_classes, self.embed_dims, self.num_matching_queries = num_classes, embed_dims, num_matching_queries
        self.label_noise_scale, self.box_noise_scale = label_noise_scale, box_noise_scale
        group_cfg = group_cfg or {}
        self.dynamic_dn_groups = group_cfg.get("dynamic", True)
        self.num_dn_queries = int(group_cfg.get("num_dn_queries", 100))
        self.num_groups = group_cfg.get("num_groups")
        self.label_embedding = nn.Embedding(num_classes, embed_dims)

    def num_groups_for(self, max_targets: int) -> int:
        if not self.dynamic_dn_groups:
            return max(int(self.num_groups), 1)
        return max(self.num_dn_queries // max_targets if max_targets else 1, 1)

    def forward(self, gt_labels: list[torch.Tensor], gt_boxes: list[torch.Tensor]):
        """gt_boxes normalised xyxy per image -> (label queries, box queries (logits), mask, meta)."""
        counts = [len(b) for b in gt_boxes]
        max_t = max(counts)
        groups = self.num_groups_for(max_t)
        labels, boxes = torch.cat(gt_labels), torch.cat(gt_boxes)
        label_q = self.label_embedding(self.noisy_labels(labels, groups))
        box_q = self.noisy_boxes(boxes, groups)
        batch_idx = torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in enumerate(counts)]).to(boxes.device)
        label_q, box_q = self.collate(label_q, box_q, batch_idx, counts, groups)
        meta = {"num_denoising_queries": int(max_t * 2 * groups), "num_denoising_groups": groups}
        return label_q, box_q, self.attention_mask(max_t, groups, boxes.device), meta

    def noisy_labels(self, labels: torch.Tensor, groups: int) -> torch.Tensor:
        expand = labels.repeat(2 * groups, 1).view(-1)
        chosen = (torch.rand_like(expand.float()) < self.label_noise_scale * 0.5).nonzero().view(-1)
        return expand.scatter(0, chosen, torch.randint_like(chosen, 0, self.num_classes))

    def noisy_boxes(self, boxes: torch.Tensor, groups: int) -> torch.Tensor:
        n = len(boxes)
        expand = boxes.repeat(2 * groups, 1)
        pos = (torch.arange(n, device=boxes.device)[None] + 2 * n * torch.arange(groups, device=boxes.device)[:, None])
        neg = pos.flatten() + n
        sign = torch.randint_like(expand, low=0, high=2, dtype=torch.float32) * 2.0 - 1.0
        part = torch.rand_like(expand)
        part[neg] += 1.0
        part *= sign
        whwh = xyxy_to_cxcywh(expand)[:, 2:].repeat(1, 2)
        noisy = (expand + part * whwh * self.box_noise_scale / 2).clamp(0.0, 1.0)
        return inverse_sigmoid(xyxy_to_cxcywh(noisy), eps=1e-3)

    def collate(self, label_q, box_q, batch_idx, counts, groups):
        max_t = max(counts)
        index = torch.cat([torch.arange(n, device=label_q.device) for n in counts])
        index = torch.cat([index + max_t * i for i in range(2 * groups)])
        rows = batch_idx.repeat(2 * groups)
        out_l = label_q.new_zeros(len(counts), max_t * 2 * groups, self.embed_dims)
        out_b = box_q.new_zeros(len(counts), max_t * 2 * groups, 4)
        out_l[rows, index] = label_q
        out_b[rows, index] = box_q
        return out_l, out_b

    def attention_mask(self, max_t: int, groups: int, device: torch.device) -> torch.Tensor:
        """True = may not attend: matching queries never see denoising ones, groups not each other."""
        dn = max_t * 2 * groups
        total = dn + self.num_matching_queries
        mask = torch.zeros(total, total, dtype=torch.bool, device=device)
        mask[dn:, :dn] = True
        for i in range(groups):
            rows = slice(max_t * 2 * i, max_t * 2 * (i + 1))
            mask[rows, max_t * 2 * (i + 1):dn] = True
            mask[rows, :max_t * 2 * i] = True
        return mask
