"""DETR: backbone -> ChannelMapper -> transformer encoder/decoder over the last feature map with
learned object queries -> DETRHead (set prediction, Hungarian matching)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from det.core.models.dense_heads.detr_head import DETRHead, build_head
from det.core.models.detectors.base import DetectorTrunk
from det.core.models.transformer import SinePositionalEncoding, make
from det.core.models.transformer.detr_layers import DetrTransformerDecoder, DetrTransformerEncoder
from det.core.structures import DetSample, Instances

HEADS = {"DETRHead": DETRHead}


def padding_masks(samples: Sequence[DetSample] | None, size: tuple[int, int], batch: int,
                  device: torch.device) -> torch.Tensor | None:
    """(B, h, w) True where a feature cell lies in batch padding; None when no image is padded
    (MMDetection's rule: images whose img_shape equals the batch input shape)."""
    if hasattr(samples, "padding_mask"):  # det export: masks computed in the graph from image sizes
        return samples.padding_mask(size)
    if not samples:
        return None
    bh, bw = samples[0].batch_input_shape
    shapes = [tuple(int(v) for v in s.img_shape[:2]) for s in samples]
    if all(s == (bh, bw) for s in shapes):
        return None
    masks = torch.ones(batch, bh, bw, device=device)
    for i, (h, w) in enumerate(shapes):
        masks[i, :h, :w] = 0
    return F.interpolate(masks[:, None], size=size).to(torch.bool)[:, 0]


class DetectionTransformer(DetectorTrunk):
    """The detector interface (loss / predict / forward) around `forward_transformer`, which
    subclasses define; `bbox_head` gets `train_cfg`/`test_cfg`."""

    head_table: dict = HEADS

    def __init__(self, backbone: dict, bbox_head: dict, neck: dict | None = None, encoder: dict | None = None,
                 decoder: dict | None = None, positional_encoding: dict | None = None, num_queries: int = 100,
                 data_preprocessor: dict | None = None, train_cfg: dict | None = None,
                 test_cfg: dict | None = None) -> None:
        super().__init__(backbone, neck, data_preprocessor)
        self.num_queries = num_queries
        self.bbox_head = build_head(bbox_head, self.head_table, train_cfg, test_cfg)
        self.num_classes = self.bbox_head.num_classes
        self._init_layers(encoder or {}, decoder or {}, positional_encoding or {})

    def forward(self, x: torch.Tensor) -> tuple:
        """Raw head outputs (class scores, boxes) for a batch tensor (`det flops`, export)."""
        out = self.forward_transformer(self.extract_feat(x), None)
        refs = [out["references"]] if "references" in out else []  # Deformable DETR and DINO heads
        return self.bbox_head(out["hidden_states"], *refs)

    def loss(self, inputs: torch.Tensor, samples: Sequence[DetSample]) -> dict[str, torch.Tensor]:
        x, samples = self.data_preprocessor(inputs, samples)
        return self.bbox_head.loss(**self.forward_transformer(self.extract_feat(x), samples), samples=samples)

    def predict(self, inputs: torch.Tensor, samples: Sequence[DetSample], rescale: bool = True) -> list[Instances]:
        x, samples = self.data_preprocessor(inputs, samples)
        outs = self.forward_transformer(self.extract_feat(x), samples)
        return self.bbox_head.predict(**outs, samples=samples, rescale=rescale)


class DETR(DetectionTransformer):
    def _init_layers(self, encoder: dict, decoder: dict, positional_encoding: dict) -> None:
        self.positional_encoding = make(SinePositionalEncoding, positional_encoding, "positional_encoding")
        self.encoder = make(DetrTransformerEncoder, encoder, "encoder")
        self.decoder = make(DetrTransformerDecoder, decoder, "decoder")
        self.embed_dims = self.encoder.embed_dims
        self.query_embedding = nn.Embedding(self.num_queries, self.embed_dims)
        for coder in (self.encoder, self.decoder):
            for p in coder.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)

    def forward_transformer(self, feats: tuple[torch.Tensor, ...], samples: Sequence[DetSample] | None) -> dict:
        feat = feats[-1]
        b, c, h, w = feat.shape
        mask = padding_masks(samples, (h, w), b, feat.device)
        pos = self.positional_encoding(mask, (b, h, w), feat.device).to(feat.dtype)
        feat, pos = feat.flatten(2).transpose(1, 2), pos.flatten(2).transpose(1, 2)
        flat_mask = mask.flatten(1) if mask is not None else None
        memory = self.encoder(feat, pos, flat_mask)
        query_pos = self.query_embedding.weight[None].expand(b, -1, -1)
        states = self.decoder(torch.zeros_like(query_pos), memory, memory, query_pos, pos, flat_mask)
        return {"hidden_states": states}
