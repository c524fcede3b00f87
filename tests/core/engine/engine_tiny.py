"""A tiny detector and dataset (one coloured square per 32x32 image) for engine tests: small
enough that a few epochs take a second on CPU, real enough to learn and to be evaluated."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from det.core.structures import DetSample, Instances

CLASSES = ("red", "green", "blue")
COLOURS = ((0, 0, 255), (0, 255, 0), (255, 0, 0))  # BGR


class SquaresDataset(torch.utils.data.Dataset):
    """Image i: a square of class i % 3 at a seeded position; random jitter of the square's
    brightness uses NumPy's global RNG (so that resume must restore RNG states exactly)."""

    classes = CLASSES
    cat_ids = (1, 2, 3)

    def __init__(self, n: int = 16, size: int = 32, augment: bool = True):
        self.n, self.size, self.augment = n, size, augment
        self.pipeline_name = "default"

    def __len__(self) -> int:
        return self.n

    def set_pipeline(self, cfgs: list[dict]) -> None:
        self.pipeline_name = cfgs[0]["type"] if cfgs else "none"
        self.augment = False

    def box(self, i: int) -> tuple[int, int, int, int]:
        rng = np.random.default_rng(i)
        s = int(rng.integers(8, 16))
        x, y = (int(v) for v in rng.integers(0, self.size - s, 2))
        return x, y, x + s, y + s

    def __getitem__(self, i: int) -> tuple[torch.Tensor, DetSample]:
        img = np.full((self.size, self.size, 3), 40, np.uint8)
        x1, y1, x2, y2 = self.box(i)
        colour = np.array(COLOURS[i % 3], np.float64)
        if self.augment:
            colour = colour * np.random.uniform(0.8, 1.0)
        img[y1:y2, x1:x2] = colour.astype(np.uint8)
        gt = Instances(bboxes=torch.tensor([[x1, y1, x2, y2]], dtype=torch.float32),
                       labels=torch.tensor([i % 3]), ignore=torch.zeros(1, dtype=torch.bool))
        sample = DetSample(img_id=i, ori_shape=(self.size, self.size), img_shape=(self.size, self.size),
                           pad_shape=(self.size, self.size), gt=gt)
        return torch.from_numpy(img).permute(2, 0, 1).contiguous(), sample

    def coco_gt(self) -> dict:
        images, anns = [], []
        for i in range(self.n):
            x1, y1, x2, y2 = self.box(i)
            images.append({"id": i, "width": self.size, "height": self.size, "file_name": f"{i}.png"})
            anns.append({"id": i + 1, "image_id": i, "category_id": self.cat_ids[i % 3], "bbox": [x1, y1, x2 - x1, y2 - y1],
                         "area": float((x2 - x1) * (y2 - y1)), "iscrowd": 0})
        return {"images": images, "annotations": anns,
                "categories": [{"id": c, "name": n} for c, n in zip(self.cat_ids, self.classes)]}


def collate(items):
    inputs = torch.stack([it[0] for it in items])
    return inputs, [it[1] for it in items]


class TinyDet(nn.Module):
    """Predicts one box (normalised xyxy) and a class per image. `norm` adds a BatchNorm."""

    def __init__(self, num_classes: int = 3, norm: bool = False):
        super().__init__()
        self.num_classes = num_classes
        layers = [nn.Conv2d(3, 8, 3, padding=1)]
        if norm:
            layers.append(nn.BatchNorm2d(8))
        layers += [nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.box = nn.Linear(8 * 16 * 16, 4)
        self.cls = nn.Linear(8 * 16 * 16, num_classes)

    def _forward(self, inputs: torch.Tensor):
        x = self.body(inputs.float() / 255.0).flatten(1)
        return self.box(x).sigmoid(), self.cls(x)

    def loss(self, inputs, samples):
        box, logits = self._forward(inputs)
        size = inputs.shape[-1]
        target = torch.stack([s.gt.bboxes[0] for s in samples]).to(box) / size
        labels = torch.stack([s.gt.labels[0] for s in samples]).to(inputs.device)
        return {"loss_bbox": (box - target).abs().mean() * 5, "loss_cls": nn.functional.cross_entropy(logits, labels)}

    def predict(self, inputs, samples):
        box, logits = self._forward(inputs)
        prob = logits.softmax(-1)
        score, label = prob.max(-1)
        size = inputs.shape[-1]
        return [Instances(bboxes=box[i:i + 1].float() * size, labels=label[i:i + 1], scores=score[i:i + 1].float())
                for i in range(len(samples))]
