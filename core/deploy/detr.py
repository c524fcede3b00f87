"""The exportable forward of the DETR family (DETR, Deformable DETR, DINO).

Inputs as the dense export (`images`, `image_sizes`). The padding mask is computed in the graph
from `image_sizes` (nearest-resized as `padding_masks` does; all-False for an image that fills
the input, which the attention, positional encoding and valid ratios treat as no mask).
Multi-scale deformable attention exports as its grid_sample decomposition (ONNX GridSample,
opset >= 16; det.ops.ms_deform_attn switches during ONNX export), TorchScript keeps det's
compiled op. Post-processing is the heads' own: top `max_per_img` of the last decoder layer's
scores (sigmoid over queries x classes, or softmax without background), normalised cxcywh
boxes scaled to the image and clipped; no NMS.
"""
from __future__ import annotations

import torch
from torch import nn


class ExportSizes:
    """Stands in for the samples in `forward_transformer`: only `padding_masks` reads them."""

    def __init__(self, image_sizes: torch.Tensor, input_size: tuple[int, int]) -> None:
        self.image_sizes, self.input_size = image_sizes, input_size

    def __len__(self) -> int:
        return int(self.image_sizes.shape[0])

    def padding_mask(self, size: tuple[int, int]) -> torch.Tensor:
        """(B, h, w) True on feature cells whose nearest input pixel lies in padding."""
        (bh, bw), (h, w) = self.input_size, (int(size[0]), int(size[1]))
        ys = (torch.arange(h, dtype=torch.float32) * (bh / h)).floor()
        xs = (torch.arange(w, dtype=torch.float32) * (bw / w)).floor()
        sizes = self.image_sizes.float()
        return (ys[None, :, None] >= sizes[:, 0, None, None]) | (xs[None, None, :] >= sizes[:, 1, None, None])


class ExportedDETR(nn.Module):
    def __init__(self, model, imgsz: tuple[int, int]) -> None:
        super().__init__()
        self.model, self.imgsz = model, tuple(imgsz)

    def forward(self, images: torch.Tensor, image_sizes: torch.Tensor):
        out = self.model.forward_transformer(self.model.extract_feat(images), ExportSizes(image_sizes, self.imgsz))
        head = self.model.bbox_head
        if "references" in out:
            cls, boxes = head(out["hidden_states"], out["references"])
        else:
            cls, boxes = head(out["hidden_states"][-1:])
        results = [self._image(cls[-1][b], boxes[-1][b], image_sizes[b]) for b in range(images.shape[0])]
        return tuple(torch.stack(r) for r in zip(*results))

    def _image(self, cls: torch.Tensor, boxes: torch.Tensor, size: torch.Tensor):
        """DETRHead.predict_single + decoded, in input-image pixels."""
        head = self.model.bbox_head
        k = min(head.max_per_img, cls.numel() if head.use_sigmoid else cls.shape[0])
        if head.use_sigmoid:
            scores, index = cls.float().sigmoid().flatten().topk(k)
            labels, query = index % head.num_classes, torch.div(index, head.num_classes, rounding_mode="floor")
        else:
            best, labels = cls.float().softmax(-1)[:, :-1].max(-1)
            scores, query = best.topk(k)
            labels = labels[query]
        cx, cy, w, h = boxes[query].float().unbind(-1)
        hh, ww = size[0], size[1]
        xyxy = torch.stack([(cx - w / 2) * ww, (cy - h / 2) * hh, (cx + w / 2) * ww, (cy + h / 2) * hh], -1)
        lo = torch.zeros_like(xyxy)
        hi = torch.stack([ww, hh, ww, hh]).expand_as(xyxy)
        return torch.minimum(torch.maximum(xyxy, lo), hi), scores, labels
