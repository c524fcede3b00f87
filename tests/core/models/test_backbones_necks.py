"""Backbones and necks: torchvision-compatible ResNet layout, freezing, output shapes, and
parameter counts against the published numbers."""
import pytest
import torch
import torch.nn.functional as F
import torchvision

from det.core.config import load_preset
from det.core.models import build_detector
from det.core.models.backbones import CSPNeXt, ResNet
from det.core.models.backbones.csp_layers import SPPBottleneck
from det.core.models.necks import FPN, PAFPN, CSPNeXtPAFPN

from pathlib import Path

PRESETS = Path(__file__).resolve().parents[3] / "presets"


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("depth", [18, 50])
def test_resnet_matches_torchvision_layout(depth):
    with torch.device("meta"):  # shapes only: skip allocation and initialisation
        ours = ResNet(depth).state_dict()
        ref = getattr(torchvision.models, f"resnet{depth}")(weights=None).state_dict()
    ref = {k: v for k, v in ref.items() if not k.startswith("fc.")}
    assert list(ours) == list(ref)
    assert all(ours[k].shape == ref[k].shape for k in ref)


def test_resnet_loads_torchvision_weights_and_computes_the_same_features():
    tv = torchvision.models.resnet18(weights=None).eval()
    ours = ResNet(18, out_indices=(3,)).eval()
    missing, unexpected = ours.load_state_dict(tv.state_dict(), strict=False)
    assert not missing and set(unexpected) == {"fc.weight", "fc.bias"}
    x = torch.randn(1, 3, 64, 64)
    body = torch.nn.Sequential(*list(tv.children())[:-2])
    torch.testing.assert_close(ours(x)[0], body(x))


def test_resnet_param_counts_equal_torchvision():
    for depth in (34, 101):
        with torch.device("meta"):
            tv = getattr(torchvision.models, f"resnet{depth}")(weights=None)
            ours = ResNet(depth)
        assert n_params(ours) == n_params(tv) - n_params(tv.fc)


def test_resnet_frozen_stages_and_norm_eval():
    m = ResNet(18, frozen_stages=1, norm_eval=True)
    m.train()
    assert not any(p.requires_grad for p in m.conv1.parameters())
    assert not any(p.requires_grad for p in m.layer1.parameters())
    assert all(p.requires_grad for p in m.layer2.parameters())
    assert not m.layer3[0].bn1.training  # norm_eval keeps BN statistics frozen
    m2 = ResNet(18, frozen_stages=-1, norm_eval=False).train()
    assert m2.bn1.training and all(p.requires_grad for p in m2.parameters())


def test_resnet_out_indices_shapes():
    with torch.device("meta"):
        outs = ResNet(50, out_indices=(1, 2, 3)).eval()(torch.zeros(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 512, 8, 12), (1, 1024, 4, 6), (1, 2048, 2, 3)]


def test_cspnext_tiny_and_s_channels():
    tiny = CSPNeXt(deepen_factor=0.167, widen_factor=0.375).eval()
    outs = tiny(torch.zeros(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 96, 8, 8), (1, 192, 4, 4), (1, 384, 2, 2)]
    assert tiny.out_channels == [96, 192, 384]
    assert len(tiny.stage1[-1].blocks) == 1  # round(3 * 0.167) = 1 block
    with torch.device("meta"):
        s = CSPNeXt(deepen_factor=0.33, widen_factor=0.5)
    assert s.out_channels == [128, 256, 512] and len(s.stage2[-1].blocks) == 2


def test_spp_chained_pools_equal_parallel_pools():
    spp = SPPBottleneck(8, 8).eval()
    assert spp.chained
    x = torch.randn(2, 8, 11, 13)
    y = spp.conv1(x)
    parallel = torch.cat([y] + [F.max_pool2d(y, k, 1, k // 2) for k in (5, 9, 13)], 1)
    torch.testing.assert_close(spp(x), spp.conv2(parallel))


def _feats(channels, size=32, strides=(8, 16, 32)):
    return [torch.randn(1, c, size // (s // strides[0]), size // (s // strides[0])) for c, s in zip(channels, strides)]


@pytest.mark.parametrize("mode", [False, "on_input", "on_lateral", "on_output"])
def test_fpn_extra_levels(mode):
    feats = [torch.randn(1, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate([8, 16, 32, 64])]
    fpn = FPN([8, 16, 32, 64], 16, num_outs=5, start_level=1, add_extra_convs=mode,
              relu_before_extra_convs=True).eval()
    outs = fpn(feats)
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    assert all(o.shape[1] == 16 for o in outs)
    if mode == "on_input":
        assert fpn.fpn_convs[3].conv.in_channels == 64
    if mode is False:  # max-pool extra level
        torch.testing.assert_close(outs[3], F.max_pool2d(outs[2], 1, stride=2))


def test_fpn_top_down_is_lateral_sum():
    fpn = FPN([4, 4], 4, num_outs=2).eval()
    a, b = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)
    lat0, lat1 = fpn.lateral_convs[0](a), fpn.lateral_convs[1](b)
    expected0 = fpn.fpn_convs[0](lat0 + F.interpolate(lat1, size=(8, 8), mode="nearest"))
    torch.testing.assert_close(fpn([a, b])[0], expected0)


def test_pafpn_and_cspnext_pafpn_shapes():
    feats = [torch.randn(1, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate([8, 16, 32])]
    outs = PAFPN([8, 16, 32], 12, num_outs=4, add_extra_convs="on_output").eval()(feats)
    assert [tuple(o.shape) for o in outs] == [(1, 12, 16, 16), (1, 12, 8, 8), (1, 12, 4, 4), (1, 12, 2, 2)]
    outs = CSPNeXtPAFPN([8, 16, 32], 12, num_csp_blocks=1).eval()(feats)
    assert [tuple(o.shape) for o in outs] == [(1, 12, 16, 16), (1, 12, 8, 8), (1, 12, 4, 4)]


def test_published_parameter_counts():
    with torch.device("meta"):
        tiny = build_detector(load_preset(PRESETS / "_base_/models/rtmdet_tiny_coco.yaml")["model"])
        retina = build_detector(load_preset(PRESETS / "_base_/models/retinanet_r50_fpn.yaml")["model"])
    assert abs(n_params(tiny) / 4.8e6 - 1) < 0.05  # MMDetection's model zoo: 4.8 M
    assert abs(n_params(retina) / 37.97e6 - 1) < 0.001  # MMDetection: 37.97 M


def test_swish_is_computed_as_mmcv_computes_it():
    """YOLOX's `Swish` must round like MMCV's x * sigmoid(x), not like fused SiLU: the last-bit
    difference grows through YOLOX-m enough to break parity with MMDetection's checkpoints."""
    from det.core.models.layers import build_act

    x = torch.randn(4096, generator=torch.Generator().manual_seed(0)) * 8
    swish, silu = build_act({"type": "Swish"}), build_act({"type": "SiLU"})
    assert torch.equal(swish(x.clone()), x * torch.sigmoid(x))
    assert isinstance(silu, torch.nn.SiLU)
    assert torch.allclose(swish(x.clone()), silu(x.clone()), atol=1e-5)
