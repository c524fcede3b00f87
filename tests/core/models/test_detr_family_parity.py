"""DETR, Deformable DETR (+refine, +two-stage) and DINO against MMDetection 3.3's outputs saved in
tests/fixtures/detr_family_parity.pt by benchmarks/parity/detr_family.py (reduced configs, weights
regenerated here from the seed): an MMDetection-style checkpoint is converted with
`convert_mmdet_weights`, then detections (boxes 1e-3 px, scores 1e-5, labels and order) and every
training loss term (1e-4, DINO's denoising noise from the same RNG seed) must match."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from det.core.convert.weights import convert_mmdet_weights
from det.core.fileio import load_checkpoint
from det.core.models import build_detector
from det.core.structures import DetSample, Instances
from tests.core.models.detr_parity_weights import seeded_state

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "fixtures" / "detr_family_parity.pt"
MODELS = ["detr", "deformable-detr", "deformable-detr-refine", "deformable-detr-refine-twostage", "dino-4scale"]
CASES = MODELS + [f"{m}-padded" for m in MODELS]  # -padded: the second image is smaller than the batch


@pytest.fixture(scope="module")
def fixture() -> dict:
    return torch.load(FIXTURE, weights_only=True)


def samples(case: dict) -> list[DetSample]:
    """The fixture's images: each with its own shape inside the batch (padded cases differ)."""
    return [DetSample(ori_shape=tuple(hw), img_shape=tuple(hw), pad_shape=tuple(hw),
                      batch_input_shape=tuple(case["size"]), gt=Instances(bboxes=b.clone(), labels=lab.clone()))
            for (b, lab), hw in zip(case["targets"], case["shapes"])]


def converted(case: dict, tmp_path: Path) -> torch.nn.Module:
    src, out = tmp_path / "mmdet.pth", tmp_path / "det.pt"
    torch.save({"state_dict": seeded_state(case["weight_shapes"], case["seed"])}, src)
    info = convert_mmdet_weights(src, out, REPO / case["preset"], overrides=case["overrides"])
    assert info["unmapped"] == [] and info["missing"] == []
    ckpt = load_checkpoint(out)
    model = build_detector(ckpt["preset"]["model"])
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_matches_mmdetection(name, fixture, tmp_path):
    case = fixture[name]
    model = converted(case, tmp_path)
    imgs = case["imgs"]
    with torch.no_grad():
        preds = model.predict(imgs, samples(case))
    for pred, (boxes, scores, labels) in zip(preds, case["mm_pred"]):
        assert torch.equal(pred.labels, labels)
        torch.testing.assert_close(pred.bboxes, boxes, atol=1e-3, rtol=0)
        torch.testing.assert_close(pred.scores, scores, atol=1e-5, rtol=0)
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    torch.manual_seed(123)
    losses = model.loss(imgs, samples(case))
    assert sorted(losses) == sorted(case["mm_loss"])
    for key, want in case["mm_loss"].items():
        assert float(losses[key].detach().sum()) == pytest.approx(float(want.sum()), abs=1e-4), key
