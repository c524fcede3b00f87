"""SwinTransformer: MMDetection's key layout and outputs (fixture written by
benchmarks/parity/mmdet_swin.py --write-fixture from MMDetection's own module), the relative
position index and shifted-window mask by hand, frozen stages, stochastic depth."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from det.core.errors import ConfigError
from det.core.models.backbones import BACKBONES, SwinTransformer
from det.core.models.backbones.swin_layers import relative_position_index, shift_mask

FIXTURE = Path(__file__).parents[2] / "fixtures" / "swin_mmdet.pt"


def _fixture_model() -> tuple[SwinTransformer, dict]:
    fixture = torch.load(FIXTURE, weights_only=True)
    model = SwinTransformer(**fixture["kwargs"]).eval()
    model.load_state_dict(fixture["state_dict"], strict=True)  # identical names and shapes
    return model, fixture


def test_outputs_match_mmdetection_swin():
    model, fixture = _fixture_model()
    with torch.no_grad():
        outputs = model(fixture["input"])
    assert [tuple(o.shape) for o in outputs] == [(2, 32, 25, 19), (2, 64, 13, 10), (2, 128, 7, 5)]
    for mine, theirs in zip(outputs, fixture["outputs"], strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)
    own = SwinTransformer(**fixture["kwargs"]).state_dict()
    key = "stages.1.blocks.1.attn.w_msa.relative_position_index"
    assert torch.equal(own[key], fixture["state_dict"][key])  # built by det, not loaded


def test_the_fixture_exercises_shifted_windows():
    model, fixture = _fixture_model()
    for stage in model.stages:
        for block in stage.blocks:
            block.attn.shift_size = 0
    with torch.no_grad():
        unshifted = model(fixture["input"])
    assert (unshifted[0] - fixture["outputs"][0]).abs().max() > 1e-2


def test_relative_position_index_by_hand():
    # 2x2 window, tokens (0,0) (0,1) (1,0) (1,1): index = (dy + 1) * 3 + (dx + 1)
    expected = torch.tensor([[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]])
    assert torch.equal(relative_position_index(2, 2), expected)


def test_shift_mask_separates_the_rolled_regions():
    # 4x4 map, windows of 2, shift 1: the last window (bottom right) holds tokens of 4 regions
    mask = shift_mask(4, 4, 2, 1, torch.device("cpu"))
    assert mask.shape == (4, 4, 4)
    assert torch.equal(mask[0], torch.zeros(4, 4))  # top-left window: one region
    expected = torch.full((4, 4), -100.0)
    expected.fill_diagonal_(0.0)
    assert torch.equal(mask[3], expected)
    assert torch.equal(mask[1], torch.tensor([[0.0, -100, 0, -100], [-100, 0, -100, 0], [0, -100, 0, -100],
                                              [-100, 0, -100, 0]]))


def test_frozen_stages_stochastic_depth_and_registration():
    torch.manual_seed(0)
    model = BACKBONES["SwinTransformer"](embed_dims=16, depths=(2, 2), num_heads=(1, 2), strides=(4, 2),
                                         out_indices=(0, 1), window_size=4, frozen_stages=1, drop_path_rate=0.5)
    assert model.out_channels == [16, 32]
    model.train()
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters()) and not model.norm0.weight.requires_grad
    assert all(p.requires_grad for p in model.stages[1].parameters())
    assert not model.stages[0].training and model.stages[1].training
    x = torch.randn(4, 3, 32, 32)
    a, b = model(x)[1], model(x)[1]
    assert not torch.equal(a, b)  # drop path active in training (rate 0.25 and 0.5 in stage 1)
    model.eval()
    torch.testing.assert_close(model(x)[1], model(x)[1], atol=0, rtol=0)
    with pytest.raises(ConfigError, match="out_indices: \\[0, 1, 2, 3\\] outside 0..1"):
        SwinTransformer(embed_dims=16, depths=(1, 1), num_heads=(1, 1), strides=(4, 2))


def test_original_swin_checkpoints_convert():
    """Microsoft's layout: names mapped, and patch merging with the converted weights equals the
    original definition (neighbours (0,0) (1,0) (0,1) (1,1) concatenated, LN, linear)."""
    from det.core.models.backbones.swin import from_original_swin
    from det.core.models.backbones.swin_layers import PatchMerging

    torch.manual_seed(0)
    c = 6
    norm, reduction = torch.nn.LayerNorm(4 * c), torch.nn.Linear(4 * c, 2 * c, bias=False)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, 6, 8, c)  # (B, H, W, C)
    parts = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
    expected = reduction(norm(torch.cat(parts, -1).view(2, -1, 4 * c)))
    original = {"layers.0.downsample.norm.weight": norm.weight, "layers.0.downsample.norm.bias": norm.bias,
                "layers.0.downsample.reduction.weight": reduction.weight, "head.weight": torch.zeros(1),
                "layers.0.blocks.1.attn.relative_position_bias_table": torch.zeros(1),
                "layers.0.blocks.1.mlp.fc1.weight": torch.zeros(1), "layers.0.blocks.1.mlp.fc2.bias": torch.zeros(1),
                "patch_embed.proj.weight": torch.zeros(1), "norm.weight": torch.zeros(1)}
    converted = from_original_swin(original)
    assert sorted(converted) == sorted([
        "stages.0.downsample.norm.weight", "stages.0.downsample.norm.bias", "stages.0.downsample.reduction.weight",
        "stages.0.blocks.1.attn.w_msa.relative_position_bias_table", "stages.0.blocks.1.ffn.layers.0.0.weight",
        "stages.0.blocks.1.ffn.layers.1.bias", "patch_embed.projection.weight", "norm.weight"])
    merging = PatchMerging(c, 2 * c)
    merging.load_state_dict({k.split("downsample.")[1]: v for k, v in converted.items() if "downsample" in k})
    out, hw = merging(x.reshape(2, 48, c), (6, 8))
    assert hw == (3, 4)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_backbone_init_converts_an_original_swin_file(tmp_path, monkeypatch):
    """`convert_weights: true` + `model.backbone.init`: a file in Microsoft's layout initialises
    det's Swin (the MLP and merging tensors land converted, the classifier is reported unused)."""
    from det.core.models.backbones.swin import _merge_order
    from det.core.zoo.pretrained import init_backbone

    monkeypatch.setenv("DET_HOME", str(tmp_path / "home"))
    kwargs = {"embed_dims": 8, "depths": (2, 1), "num_heads": (1, 2), "strides": (4, 2), "out_indices": (0, 1),
              "window_size": 4}
    donor = SwinTransformer(**kwargs).state_dict()
    original = {k.replace("stages.", "layers.").replace("ffn.layers.0.0.", "mlp.fc1.").replace("ffn.layers.1.", "mlp.fc2.")
                .replace("attn.w_msa.", "attn.").replace("patch_embed.projection.", "patch_embed.proj."): v
                for k, v in donor.items()}
    original["head.weight"] = torch.zeros(3, 16)
    torch.save({"model": original}, tmp_path / "swin_original.pth")
    model = SwinTransformer(convert_weights=True, **kwargs)
    report = init_backbone(model, {"type": "Pretrained", "checkpoint": str(tmp_path / "swin_original.pth")})
    assert report["missing"] == [] and report["unexpected"] == [] and report["mismatched"] == []
    own = model.state_dict()
    assert torch.equal(own["stages.0.blocks.1.ffn.layers.0.0.weight"], donor["stages.0.blocks.1.ffn.layers.0.0.weight"])
    key = "stages.0.downsample.reduction.weight"
    assert torch.equal(own[key], _merge_order(donor[key])) and not torch.equal(own[key], donor[key])


def test_swin_preset_trains_without_decay_on_norms_and_bias_tables():
    from det.core.config import load_preset
    from det.core.engine.optim import param_groups
    from det.core.models import build_detector

    cfg = load_preset("zoo/mask-rcnn_swin-t-p4-w7_fpn")
    model = build_detector(cfg["model"])
    assert model.backbone.out_channels == [96, 192, 384, 768] and model.backbone_init["checkpoint"].endswith(
        "swin_tiny_patch4_window7_224.pth")
    groups = param_groups(model, 1e-4, 0.05, cfg["train"]["paramwise"])
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    backbone = model.backbone
    assert decay[id(backbone.stages[2].blocks[3].attn.w_msa.relative_position_bias_table)] == 0.0
    assert decay[id(backbone.stages[0].blocks[0].norm1.weight)] == 0.0 and decay[id(backbone.norm3.bias)] == 0.0
    assert decay[id(backbone.stages[0].blocks[0].attn.w_msa.qkv.weight)] == 0.05
