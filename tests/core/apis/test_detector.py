"""Detector with a hand-written model: the real test pipeline (Resize, Pad, Pack), padding to a
batch, and mapping back to original pixels are checked against known rectangles."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from det.core.apis import Detector, inference_pipeline_cfg
from det.core.errors import ConfigError, DetError
from det.core.structures import Instances

PIPELINE = [
    {"type": "LoadImageFromFile"},
    {"type": "Resize", "scale": [64, 64], "keep_ratio": True},
    {"type": "Pad", "size": [64, 64], "pad_val": 114},
    {"type": "LoadAnnotations", "with_bbox": True},
    {"type": "Pack"},
]


class RedBoxModel(torch.nn.Module):
    """Predicts the bounding box of pure-red pixels in each (unpadded) input, in original pixels;
    records the batch shapes it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple] = []

    def predict(self, inputs: torch.Tensor, samples: list) -> list[Instances]:
        assert inputs.dtype == torch.uint8 and not torch.is_grad_enabled()
        self.seen.append(tuple(inputs.shape))
        out = []
        for img, s in zip(inputs, samples):
            h, w = s.img_shape
            red = (img[2, :h, :w] > 200) & (img[1, :h, :w] < 50) & (img[0, :h, :w] < 50)
            ys, xs = torch.nonzero(red, as_tuple=True)
            if len(xs) == 0:
                out.append(Instances(scores=torch.zeros(0)))
                continue
            sx, sy = s.scale_factor
            box = torch.tensor([[xs.min() / sx, ys.min() / sy, (xs.max() + 1) / sx, (ys.max() + 1) / sy]])
            # a second, low-scoring detection of class 1 to exercise the filters
            out.append(Instances(bboxes=torch.cat([box, box * 0.5]), labels=torch.tensor([0, 1]),
                                 scores=torch.tensor([0.9, 0.2])))
        return out


def _image(h, w, box):
    img = np.full((h, w, 3), 90, np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = (0, 0, 255)
    return img


@pytest.fixture
def detector():
    return Detector(RedBoxModel(), inference_pipeline_cfg({"data": {"test": {"pipeline": PIPELINE}}}),
                    ["red", "half"], device="cpu", score_thr=0.3, batch_size=2)


def test_pipeline_drops_loading_steps():
    cfg = inference_pipeline_cfg({"data": {"test": {"pipeline": PIPELINE}}})
    assert [t["type"] for t in cfg] == ["Resize", "Pad", "Pack"]
    with pytest.raises(ConfigError, match="data.test.pipeline"):
        inference_pipeline_cfg({"data": {}})


def test_boxes_back_in_original_pixels_and_batching(detector, tmp_path):
    a = _image(128, 256, (32, 16, 96, 64))  # scale 0.25 -> 64 x 32 input
    b = _image(64, 64, (8, 8, 40, 24))
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), a)
    preds = detector([str(path), b, a])
    assert detector.model.seen == [(2, 3, 64, 64), (1, 3, 64, 64)]  # 64 is a multiple of 32
    assert [p.img_path for p in preds] == [str(path), "", ""]
    assert (preds[0].height, preds[0].width) == (128, 256)
    np.testing.assert_allclose(preds[0].bboxes, [[32, 16, 96, 64]], atol=4)
    np.testing.assert_allclose(preds[1].bboxes, [[8, 8, 40, 24]], atol=1)
    assert preds[0].class_names == ["red"] and preds[0].labels.tolist() == [0]  # 0.2 < score_thr
    single = detector(b)
    assert not isinstance(single, list) and len(single) == 1


def test_score_threshold_and_class_filter():
    model = RedBoxModel()
    cfg = inference_pipeline_cfg({"data": {"test": {"pipeline": PIPELINE}}})
    img = _image(64, 64, (8, 8, 40, 24))
    both = Detector(model, cfg, ["red", "half"], score_thr=0.0)(img)
    assert both.labels.tolist() == [0, 1] and both.scores.tolist() == pytest.approx([0.9, 0.2])
    only_half = Detector(model, cfg, ["red", "half"], score_thr=0.0, classes=["half"])(img)
    assert only_half.class_names == ["half"]
    with pytest.raises(DetError, match="unknown class 'hlaf'; did you mean 'half'"):
        Detector(model, cfg, ["red", "half"], classes=["hlaf"])


def test_bad_inputs(detector, tmp_path):
    with pytest.raises(DetError, match="image not found"):
        detector(str(tmp_path / "nope.jpg"))
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(DetError, match="cannot read image"):
        detector(str(tmp_path / "bad.jpg"))
    with pytest.raises(DetError, match=r"\(H, W, 3\)"):
        detector(np.zeros((4, 4), np.uint8))


def test_amp_and_channels_last_run(tmp_path):
    cfg = inference_pipeline_cfg({"data": {"test": {"pipeline": PIPELINE}}})
    det = Detector(RedBoxModel(), cfg, ["red", "half"], amp=True, channels_last=True)
    pred = det(_image(64, 64, (8, 8, 40, 24)))
    np.testing.assert_allclose(pred.bboxes, [[8, 8, 40, 24]], atol=1)


def test_device_errors():
    from det.core.apis.detector import resolve_device

    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(DetError, match="--device"):
        resolve_device("tpu:0")
    if not torch.cuda.is_available():
        with pytest.raises(DetError, match="CUDA is not available"):
            resolve_device("cuda")


def test_pil_input_plot_and_save(detector, tmp_path):
    from PIL import Image

    bgr = _image(64, 64, (8, 8, 40, 24))
    pil = Image.fromarray(bgr[:, :, ::-1].copy())  # PIL holds RGB
    pred = detector(pil)
    np.testing.assert_allclose(pred.bboxes, detector(bgr).bboxes)
    drawn = pred.plot()
    assert drawn.shape == bgr.shape and (drawn != bgr).any()
    path = pred.save(tmp_path / "drawn.png")
    assert cv2.imread(str(path)).shape == bgr.shape
    with pytest.raises(DetError, match="already exists"):
        pred.save(path)
    rec = __import__("json").loads(pred.save(tmp_path / "pred.json").read_text())
    assert rec["class_names"] == ["red"]
    assert "Example" in Detector.__doc__ and "from_checkpoint" in Detector.__doc__
