"""fuse_conv_bn: folding eval-mode BatchNorm into the preceding conv keeps every detector's
outputs (raw head maps and post-processed detections) within 1e-4, including RTMDet's head
whose convs are shared across levels with a BatchNorm per level, and refuses training mode."""
import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from det.core.config import load_preset
from det.core.errors import DetError
from det.core.models import build_detector
from det.core.models.layers import ConvModule, fold_conv_bn, fuse_conv_bn
from det.core.structures import DetSample

PRESETS = Path(__file__).resolve().parents[3] / "presets" / "_base_" / "models"


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial statistics and affine parameters (fresh BN folds to the identity)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)


def _model(preset: str, num_classes: int = 4) -> nn.Module:
    cfg = load_preset(PRESETS / preset)["model"]
    for key in ("bbox_head", "roi_head"):
        if key in cfg and "num_classes" in cfg[key]:
            cfg[key]["num_classes"] = num_classes
    if "roi_head" in cfg:
        cfg["roi_head"]["bbox_head"]["num_classes"] = num_classes
    torch.manual_seed(0)
    model = build_detector(cfg)
    _randomise_bn(model)
    return model.eval()


def _inputs(h: int = 128, w: int = 160):
    x = torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    return x, [DetSample(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))]


def _bn_count(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_fold_conv_bn_matches_conv_then_bn():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 6, 3, padding=1, bias=True)
    bn = nn.BatchNorm2d(6)
    _randomise_bn(bn)
    bn.eval()
    x = torch.randn(2, 8, 10, 12)
    assert torch.allclose(fold_conv_bn(conv, bn)(x), bn(conv(x)), atol=1e-5)


@pytest.mark.parametrize("preset", ["retinanet_r18_fpn.yaml", "rtmdet_tiny.yaml", "faster_rcnn_r18_fpn.yaml"])
def test_fused_detector_matches_unfused(preset):
    model = _model(preset)
    fused = fuse_conv_bn(copy.deepcopy(model))
    assert _bn_count(model) > 0
    # every BN of these models follows a conv (ResNet/CSPNeXt, FPN, heads): all are folded
    assert _bn_count(fused) == 0
    x, samples = _inputs()
    with torch.inference_mode():
        feats = model.extract_feat(model.data_preprocessor(x, copy.deepcopy(samples))[0])
        feats_f = fused.extract_feat(fused.data_preprocessor(x, copy.deepcopy(samples))[0])
        for a, b in zip(feats, feats_f):
            # float32 reassociation in a deep stack: allow 1e-5 of the map's range (AVX2 kernels
            # round differently from AVX-512 ones; 2e-4 on maps that reach 30)
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * a.abs().max().item()), (a - b).abs().max()
        if hasattr(model, "bbox_head"):
            for a, b in zip(model.bbox_head(feats), fused.bbox_head(feats_f)):
                for la, lb in zip(a, b):
                    assert torch.allclose(la, lb, rtol=1e-4, atol=1e-4), (la - lb).abs().max()
        pred = model.predict(x, copy.deepcopy(samples))[0]
        pred_f = fused.predict(x, copy.deepcopy(samples))[0]
    assert len(pred) > 0 and len(pred) == len(pred_f)
    assert torch.allclose(pred.scores, pred_f.scores, atol=1e-4)
    assert torch.allclose(pred.bboxes, pred_f.bboxes, atol=1e-3)  # pixels; 1e-4 relative to a 160 px image
    assert torch.equal(pred.labels, pred_f.labels)


def test_shared_conv_gets_one_fused_copy_per_bn():
    conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    a = ConvModule(4, 4, 3, padding=1, norm_cfg={"type": "BN"})
    b = ConvModule(4, 4, 3, padding=1, norm_cfg={"type": "BN"})
    a.conv = b.conv = conv
    net = nn.Sequential(a, b)
    _randomise_bn(net)
    net.eval()
    x = torch.randn(1, 4, 9, 9)
    want = net(x)
    fuse_conv_bn(net)
    assert a.conv is not b.conv
    assert torch.allclose(net(x), want, atol=1e-5)


def test_sequential_conv_bn_pairs_and_training_refused():
    net = nn.Sequential(nn.Conv2d(3, 5, 1), nn.BatchNorm2d(5), nn.ReLU(), nn.BatchNorm2d(5))
    _randomise_bn(net)
    with pytest.raises(DetError, match="training mode"):
        fuse_conv_bn(net)
    net.eval()
    x = torch.randn(2, 3, 6, 6)
    want = net(x)
    fuse_conv_bn(net)
    assert isinstance(net[1], nn.Identity) and isinstance(net[3], nn.BatchNorm2d)  # a BN after ReLU stays
    assert torch.allclose(net(x), want, atol=1e-5)


def test_resnet_conv_bn_on_weights_matches_module_order_with_gradients():
    """ResNet applies an eval-mode BN (norm_eval) to the conv's weights while training: same
    outputs and gradients (input, conv weight, BN affine) as bn(conv(x)); a training-mode BN
    runs as a module (its running statistics move)."""
    from det.core.models.backbones.resnet import conv_bn

    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, 2, 1, bias=False)
    bn = nn.BatchNorm2d(16)
    _randomise_bn(bn)
    bn.eval()
    conv2, bn2 = copy.deepcopy(conv), copy.deepcopy(bn)
    x = torch.randn(2, 8, 20, 20, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    y, y2 = conv_bn(conv, bn, x), bn2(conv2(x2))
    g = torch.randn_like(y)
    y.backward(g)
    y2.backward(g)
    assert torch.allclose(y, y2, atol=1e-5)
    for a, b in ((x.grad, x2.grad), (conv.weight.grad, conv2.weight.grad), (bn.weight.grad, bn2.weight.grad),
                 (bn.bias.grad, bn2.bias.grad)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-4)
    bn.train()
    before = bn.running_mean.clone()
    conv_bn(conv, bn, x)
    assert not torch.equal(bn.running_mean, before)
