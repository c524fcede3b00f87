"""A deterministic stand-in detector for runner tests: finds pure red/green rectangles."""
from __future__ import annotations

import cv2
import numpy as np

from det.core.inference.prediction import Prediction

COLOURS = [(0, 0, 255), (0, 255, 0)]  # BGR per class


def find_rectangles(img: np.ndarray, with_masks: bool = False) -> Prediction:
    h, w = img.shape[:2]
    boxes, labels, masks = [], [], []
    for label, colour in enumerate(COLOURS):
        hit = np.all(np.abs(img.astype(int) - colour) < 60, axis=2).astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(hit, connectivity=4)
        for k in range(1, n):
            x, y, bw, bh, area = stats[k]
            if area >= 6:
                boxes.append([x, y, x + bw, y + bh])
                labels.append(label)
                masks.append(comp == k)
    n = len(boxes)
    return Prediction(img_path="", height=h, width=w, bboxes=np.array(boxes, np.float32).reshape(n, 4),
                      scores=np.full(n, 0.9, np.float32), labels=np.array(labels, np.int64),
                      class_names=[["red", "green"][i] for i in labels],
                      masks=np.array(masks, bool).reshape(n, h, w) if with_masks else None)


class FakeDetector:
    class_names = ["red", "green"]

    def __init__(self, with_masks: bool = False) -> None:
        self.with_masks = with_masks
        self.batches: list[int] = []

    def preprocess(self, image: np.ndarray, img_path: str = "") -> np.ndarray:
        return image

    def predict_prepared(self, prepared):
        self.batches.append(len(prepared))
        return [find_rectangles(img, self.with_masks) for img in prepared]

    def predict_arrays(self, images):
        return [find_rectangles(img, self.with_masks) for img in images]
