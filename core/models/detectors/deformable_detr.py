"""Deformable DETR: multi-scale deformable attention over 4 levels, optional iterative box
refinement (`with_box_refine`) and two-stage proposals from the encoder (`as_two_stage`)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from det.core.models.dense_heads.deformable_detr_head import DeformableDETRHead
from det.core.models.detectors.detr import DetectionTransformer, padding_masks
from det.core.models.transformer import SinePositionalEncoding, make
from det.core.models.transformer.deformable_layers import (
    DeformableDetrTransformerDecoder,
    DeformableDetrTransformerEncoder,
)
from det.core.structures import DetSample


class DeformableDETR(DetectionTransformer):
    head_table = {"DeformableDETRHead": DeformableDETRHead}

    def __init__(self, backbone: dict, bbox_head: dict, decoder: dict, neck: dict | None = None,
                 encoder: dict | None = None, positional_encoding: dict | None = None, num_queries: int = 300,
                 with_box_refine: bool = False, as_two_stage: bool = False, num_feature_levels: int = 4,
                 data_preprocessor: dict | None = None, train_cfg: dict | None = None,
                 test_cfg: dict | None = None) -> None:
        # the head's layer sharing and count follow from the detector's options (as MMDetection)
        bbox_head = {**bbox_head, "share_pred_layer": not with_box_refine, "as_two_stage": as_two_stage,
                     "num_pred_layer": decoder.get("num_layers", 6) + (1 if as_two_stage else 0)}
        self.with_box_refine, self.as_two_stage, self.num_feature_levels = with_box_refine, as_two_stage, num_feature_levels
        super().__init__(backbone, bbox_head, neck, encoder, decoder, positional_encoding, num_queries,
                         data_preprocessor, train_cfg, test_cfg)

    def _init_layers(self, encoder: dict, decoder: dict, positional_encoding: dict) -> None:
        self.positional_encoding = make(SinePositionalEncoding, positional_encoding, "positional_encoding")
        self.encoder = make(DeformableDetrTransformerEncoder, encoder, "encoder")
        self.decoder = make(DeformableDetrTransformerDecoder, decoder, "decoder")
        c = self.embed_dims = self.encoder.embed_dims
        self.level_embed = nn.Parameter(torch.empty(self.num_feature_levels, c))
        if self.as_two_stage:
            self.memory_trans_fc, self.memory_trans_norm = nn.Linear(c, c), nn.LayerNorm(c)
            self.pos_trans_fc, self.pos_trans_norm = nn.Linear(2 * c, 2 * c), nn.LayerNorm(2 * c)
        else:
            self.query_embedding = nn.Embedding(self.num_queries, 2 * c)
            self.reference_points_fc = nn.Linear(c, 2)
        self._init_weights()

    def _init_weights(self) -> None:
        for coder in (self.encoder, self.decoder):
            for name, p in coder.named_parameters():
                if p.dim() > 1 and "sampling_offsets" not in name and "attention_weights" not in name:
                    nn.init.xavier_uniform_(p)
        for fc in ([self.memory_trans_fc, self.pos_trans_fc] if self.as_two_stage else [self.reference_points_fc]):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.level_embed)

    def flatten_levels(self, feats: Sequence[torch.Tensor], samples: Sequence[DetSample] | None) -> dict:
        """Levels flattened and concatenated, with positions (+ level embedding), padding mask,
        shapes, start indices and valid ratios (MMDetection's pre_transformer)."""
        b = feats[0].size(0)
        flat, pos, masks, ratios = [], [], [], []
        for lvl, feat in enumerate(feats):
            h, w = feat.shape[-2:]
            mask = padding_masks(samples, (h, w), b, feat.device)
            p = self.positional_encoding(mask, (b, h, w), feat.device).to(feat.dtype)
            flat.append(feat.flatten(2).transpose(1, 2))
            pos.append(p.flatten(2).transpose(1, 2) + self.level_embed[lvl].view(1, 1, -1))
            masks.append(mask)
            ratios.append(valid_ratio(mask) if mask is not None else feat.new_ones(b, 2))
        shapes = torch.tensor([f.shape[-2:] for f in feats], dtype=torch.long, device=feats[0].device)
        starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
        mask = torch.cat([m.flatten(1) for m in masks], 1) if masks[0] is not None else None
        return {"feat": torch.cat(flat, 1), "pos": torch.cat(pos, 1), "mask": mask, "spatial_shapes": shapes,
                "level_start_index": starts, "valid_ratios": torch.stack(ratios, 1).float()}

    def forward_transformer(self, feats: tuple[torch.Tensor, ...], samples: Sequence[DetSample] | None) -> dict:
        inp = self.flatten_levels(feats, samples)
        memory = self.encoder(inp["feat"], inp["pos"], inp["mask"], inp["spatial_shapes"], inp["level_start_index"],
                              inp["valid_ratios"])
        query, query_pos, refs, head = self.pre_decoder(memory, inp["mask"], inp["spatial_shapes"])
        states, inter_refs = self.decoder(query, query_pos, memory, inp["mask"], refs, inp["spatial_shapes"],
                                          inp["level_start_index"], inp["valid_ratios"],
                                          self.bbox_head.reg_branches if self.with_box_refine else None)
        return {"hidden_states": states, "references": [refs, *inter_refs], **head}

    def pre_decoder(self, memory: torch.Tensor, mask: torch.Tensor | None, shapes: torch.Tensor):
        b, _, c = memory.shape
        if not self.as_two_stage:
            query_pos, query = self.query_embedding.weight.split(c, dim=1)
            query_pos, query = query_pos[None].expand(b, -1, -1), query[None].expand(b, -1, -1)
            return query, query_pos, self.reference_points_fc(query_pos).sigmoid(), {}
        out_memory, proposals = self.encoder_proposals(memory, mask, shapes)
        n = self.decoder.num_layers
        enc_class = self.bbox_head.cls_branches[n](out_memory)
        enc_coord_unact = self.bbox_head.reg_branches[n](out_memory) + proposals
        topk = enc_class[..., 0].topk(self.num_queries, dim=1)[1]
        topk_unact = enc_coord_unact.gather(1, topk[..., None].expand(-1, -1, 4)).detach()
        pos = self.pos_trans_norm(self.pos_trans_fc(proposal_pos_embed(topk_unact, c // 2)))
        query_pos, query = pos.split(c, dim=2)
        head = {"enc_outputs_class": enc_class, "enc_outputs_coord": enc_coord_unact.sigmoid()} if self.training else {}
        return query, query_pos, topk_unact.sigmoid(), head

    def encoder_proposals(self, memory: torch.Tensor, mask: torch.Tensor | None, shapes: torch.Tensor):
        """One square proposal per encoder cell (size 0.05 * 2^level), in logit space; cells in
        padding or near the border get +inf and their memory 0."""
        b = memory.size(0)
        proposals, start = [], 0
        for lvl, (h, w) in enumerate(shapes.tolist()):
            if mask is not None:
                m = mask[:, start:start + h * w].view(b, h, w)
                scale = torch.stack([(~m[:, 0, :]).sum(1), (~m[:, :, 0]).sum(1)], 1).view(b, 1, 1, 2)
            else:
                scale = memory.new_tensor([w, h]).view(1, 1, 1, 2)
            ys, xs = torch.meshgrid(torch.linspace(0, h - 1, h, device=memory.device),
                                    torch.linspace(0, w - 1, w, device=memory.device), indexing="ij")
            grid = (torch.stack([xs, ys], -1)[None].expand(b, -1, -1, -1) + 0.5) / scale
            wh = torch.full_like(grid, 0.05 * 2.0**lvl)
            proposals.append(torch.cat([grid, wh], -1).view(b, -1, 4))
            start += h * w
        proposals = torch.cat(proposals, 1)
        valid = ((proposals > 0.01) & (proposals < 0.99)).all(-1, keepdim=True)
        proposals = torch.log(proposals / (1 - proposals))
        if mask is not None:
            proposals = proposals.masked_fill(mask[..., None], float("inf"))
            memory = memory.masked_fill(mask[..., None], 0.0)
        proposals = proposals.masked_fill(~valid, float("inf"))
        memory = memory.masked_fill(~valid, 0.0)
        return self.memory_trans_norm(self.memory_trans_fc(memory)), proposals


def valid_ratio(mask: torch.Tensor) -> torch.Tensor:
    """(B, 2) fraction of the width and height of a padding mask that holds the image."""
    _, h, w = mask.shape
    return torch.stack([(~mask[:, 0, :]).sum(1).float() / w, (~mask[:, :, 0]).sum(1).float() / h], -1)


def proposal_pos_embed(proposals: torch.Tensor, num_pos_feats: int = 128, temperature: int = 10000) -> torch.Tensor:
    """Sine embedding of (B, Q, 4) logit-space boxes -> (B, Q, 4 * num_pos_feats)."""
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=proposals.device)
    dim_t = temperature ** (2 * (dim_t // 2) / num_pos_feats)
    pos = proposals.sigmoid()[..., None] * (2 * math.pi) / dim_t
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=4).flatten(2)
