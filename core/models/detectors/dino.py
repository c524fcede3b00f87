"""DINO: Deformable DETR (two-stage, box refinement) with contrastive denoising queries, mixed
query selection (positions from the encoder's top-k proposals, content queries learned) and
look-forward-twice box refinement."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from det.core.models.dense_heads.base import gt_of
from det.core.models.dense_heads.dino_head import DINOHead
from det.core.models.detectors.deformable_detr import DeformableDETR
from det.core.models.transformer import SinePositionalEncoding, make
from det.core.models.transformer.deformable_layers import DeformableDetrTransformerEncoder
from det.core.models.transformer.dino_layers import CdnQueryGenerator, DinoTransformerDecoder
from det.core.structures import DetSample


class DINO(DeformableDETR):
    head_table = {"DINOHead": DINOHead}

    def __init__(self, backbone: dict, bbox_head: dict, decoder: dict, neck: dict | None = None,
                 encoder: dict | None = None, positional_encoding: dict | None = None, num_queries: int = 900,
                 with_box_refine: bool = True, as_two_stage: bool = True, num_feature_levels: int = 4,
                 dn_cfg: dict | None = None, data_preprocessor: dict | None = None, train_cfg: dict | None = None,
                 test_cfg: dict | None = None) -> None:
        super().__init__(backbone, bbox_head, decoder, neck, encoder, positional_encoding, num_queries, True, True,
                         num_feature_levels, data_preprocessor, train_cfg, test_cfg)
        del with_box_refine, as_two_stage  # always both, as MMDetection asserts
        self.dn_query_generator = make(CdnQueryGenerator, dn_cfg, "dn_cfg", num_classes=self.num_classes,
                                       embed_dims=self.embed_dims, num_matching_queries=num_queries)

    def _init_layers(self, encoder: dict, decoder: dict, positional_encoding: dict) -> None:
        self.positional_encoding = make(SinePositionalEncoding, positional_encoding, "positional_encoding")
        self.encoder = make(DeformableDetrTransformerEncoder, encoder, "encoder")
        self.decoder = make(DinoTransformerDecoder, decoder, "decoder")
        c = self.embed_dims = self.encoder.embed_dims
        self.query_embedding = nn.Embedding(self.num_queries, c)
        self.level_embed = nn.Parameter(torch.empty(self.num_feature_levels, c))
        self.memory_trans_fc, self.memory_trans_norm = nn.Linear(c, c), nn.LayerNorm(c)
        for coder in (self.encoder, self.decoder):
            for name, p in coder.named_parameters():
                if p.dim() > 1 and "sampling_offsets" not in name and "attention_weights" not in name:
                    nn.init.xavier_uniform_(p)
        nn.init.xavier_uniform_(self.memory_trans_fc.weight)
        nn.init.xavier_uniform_(self.query_embedding.weight)
        nn.init.normal_(self.level_embed)

    def forward_transformer(self, feats: tuple[torch.Tensor, ...], samples: Sequence[DetSample] | None) -> dict:
        inp = self.flatten_levels(feats, samples)
        memory = self.encoder(inp["feat"], inp["pos"], inp["mask"], inp["spatial_shapes"], inp["level_start_index"],
                              inp["valid_ratios"])
        query, refs, dn_mask, head = self.dino_queries(memory, inp["mask"], inp["spatial_shapes"], samples)
        states, references = self.decoder(query, memory, inp["mask"], dn_mask, refs, inp["spatial_shapes"],
                                          inp["level_start_index"], inp["valid_ratios"], self.bbox_head.reg_branches)
        return {"hidden_states": states, "references": list(references), **head}

    def dino_queries(self, memory: torch.Tensor, mask: torch.Tensor | None, shapes: torch.Tensor,
                     samples: Sequence[DetSample] | None):
        b = memory.size(0)
        n = self.decoder.num_layers
        out_memory, proposals = self.encoder_proposals(memory, mask, shapes)
        enc_class = self.bbox_head.cls_branches[n](out_memory)
        enc_coord_unact = self.bbox_head.reg_branches[n](out_memory) + proposals
        topk = enc_class.max(-1)[0].topk(self.num_queries, dim=1)[1]
        topk_score = enc_class.gather(1, topk[..., None].expand(-1, -1, enc_class.size(-1)))
        topk_unact = enc_coord_unact.gather(1, topk[..., None].expand(-1, -1, 4))
        topk_coords = topk_unact.sigmoid()
        query = self.query_embedding.weight[None].expand(b, -1, -1)
        refs, dn_mask, head = topk_unact.detach(), None, {}
        if self.training:
            label_q, box_q, dn_mask, dn_meta = self.denoising_queries(samples, memory.device)
            query, refs = torch.cat([label_q, query], 1), torch.cat([box_q, refs], 1)
            head = {"enc_outputs_class": topk_score, "enc_outputs_coord": topk_coords, "dn_meta": dn_meta}
        return query, refs.sigmoid(), dn_mask, head

    def denoising_queries(self, samples: Sequence[DetSample], device: torch.device):
        labels, boxes = [], []
        for s in samples:
            gt_boxes, gt_labels, _ = gt_of(s, device)
            h, w = s.input_shape
            boxes.append(gt_boxes / gt_boxes.new_tensor([w, h, w, h]))
            labels.append(gt_labels)
        return self.dn_query_generator(labels, boxes)
