"""Weights from torchvision (random init, no download) and MMDetection-layout checkpoints onto
det's modules: outputs compared with torchvision's own forward."""
from pathlib import Path

import pytest
import torch
import torchvision

from det.core.config import load_preset
from det.core.convert.weights import COCO_IDS, MMDET_RULES, convert_mmdet_weights, convert_torchvision_weights, rename
from det.core.errors import DetError
from det.core.fileio import load_checkpoint
from det.core.models import build_detector
from det.core.models.backbones import ResNet

PRESETS = Path(__file__).resolve().parents[3] / "presets" / "_base_" / "models"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small convolutions on a shared 2-core machine: extra threads only add contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def randomize_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Random BN/GN affine parameters and running statistics, so that eval-mode outputs depend on them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            for name in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(m, name, None)
                if isinstance(t, torch.Tensor) and t.dim() == 1 and not isinstance(m, torch.nn.Conv2d):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5 if name in ("weight", "running_var")
                            else torch.randn(t.shape, generator=g) * 0.1)


def tv_resnet_features(m, x):
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    outs = []
    for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
        x = layer(x)
        outs.append(x)
    return outs


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_resnet_matches_outputs(tmp_path, depth):
    torch.manual_seed(depth)
    tv = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
    randomize_norms(tv, depth)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    info = convert_torchvision_weights(tmp_path / "tv.pth", tmp_path / "det.pt")
    assert info["dropped"] == ["fc.weight", "fc.bias"]
    state = load_checkpoint(tmp_path / "det.pt")["state_dict"]
    assert all(k.startswith("backbone.") for k in state)
    det = ResNet(depth=depth).eval()
    result = det.load_state_dict({k[len("backbone."):]: v for k, v in state.items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        ours, ref = det(x), tv_resnet_features(tv, x)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() <= 1e-4


def write_preset(path, base, body):
    path.write_text(f"_base_: {base}\n{body}")
    return path


TV_DETECTORS = {
    "retinanet": ("retinanet_resnet50_fpn", "retinanet_r50_fpn.yaml",
                  ["model.neck.add_extra_convs=on_output", "model.neck.relu_before_extra_convs=true"]),
    "fcos": ("fcos_resnet50_fpn", "fcos_r50_fpn.yaml",
             ["model.neck.add_extra_convs=on_output", "model.neck.relu_before_extra_convs=true",
              "model.bbox_head.norm_on_bbox=true", "model.bbox_head.centerness_on_reg=true",
              "model.bbox_head.conv_bias=true"]),
}


def flat_levels(maps, channels):
    """Per-level (N, A*C, H, W) -> (N, sum HWA, C), torchvision's layout."""
    return torch.cat([m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, channels) for m in maps], 1)


@pytest.mark.parametrize("kind", ["retinanet", "fcos"])
def test_torchvision_detector_raw_outputs(tmp_path, kind):
    builder, preset, sets = TV_DETECTORS[kind]
    torch.manual_seed(0)
    tv = getattr(torchvision.models.detection, builder)(weights=None, weights_backbone=None).eval()
    randomize_norms(tv, 1)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    base = PRESETS / preset
    if kind == "retinanet":  # the preset's own FPN (extra convs on C5) is not torchvision's
        with pytest.raises(DetError, match="does not express torchvision's retinanet: set model.neck.add_extra_convs=on_output"):
            convert_torchvision_weights(tmp_path / "tv.pth", tmp_path / "x.pt", preset=base)
    info = convert_torchvision_weights(tmp_path / "tv.pth", tmp_path / "det.pt", preset=base, overrides=sets)
    assert info["unmapped"] == []
    # torchvision's FCOS has no per-level Scale: det keeps its 1.0 init
    assert info["missing"] == ([] if kind == "retinanet" else [f"bbox_head.scales.{i}.scale" for i in range(5)])
    ckpt = load_checkpoint(tmp_path / "det.pt")
    det = build_detector(ckpt["preset"]["model"]).eval()
    det.load_state_dict(ckpt["state_dict"], strict=False)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        ours = det(x)
        feats = list(tv.backbone(x).values())
        ref_cls = tv.head.classification_head(feats)[..., COCO_IDS]  # (N, sum HWA, 91) -> 80 classes
        ref_reg = tv.head.regression_head(feats)
    refs = [ref_cls, ref_reg] if kind == "retinanet" else [ref_cls, *ref_reg]
    for maps, ref in zip(ours, refs):
        got = flat_levels(maps, ref.shape[-1])
        assert got.shape == ref.shape
        assert (got - ref).abs().max().item() <= 1e-4


def test_mmdet_layout_checkpoint(tmp_path):
    """An MMDetection-style file (det's module names, MMEngine objects in meta, preprocessor and
    EMA keys) maps onto the preset's model with an honest report."""
    class HubLike:
        def __reduce__(self):
            return (eval, ("1 / 0",))  # would raise if the loader trusted foreign globals

    base = PRESETS / "rtmdet_tiny_coco.yaml"
    model = build_detector(load_preset(base)["model"])
    randomize_norms(model, 3)
    state = dict(model.state_dict())
    state["data_preprocessor.mean"] = torch.zeros(3)
    state["bbox_head.extra_thing.weight"] = torch.zeros(1)
    classes = tuple(f"c{i}" for i in range(80))
    torch.save({"meta": {"dataset_meta": {"classes": classes}, "message_hub": HubLike()}, "state_dict": state,
                "ema_state_dict": {"x": torch.zeros(1)}}, tmp_path / "mm.pth")
    info = convert_mmdet_weights(tmp_path / "mm.pth", tmp_path / "det.pt", base)
    assert info["unmapped"] == ["bbox_head.extra_thing.weight"] and info["missing"] == []
    assert info["dropped"] == ["data_preprocessor.mean"]
    ckpt = load_checkpoint(tmp_path / "det.pt")
    assert ckpt["meta"]["classes"] == list(classes) and ckpt["preset"]["model"]["type"] == "RTMDet"
    for key, value in model.state_dict().items():
        assert torch.equal(ckpt["state_dict"][key], value)
    with pytest.raises(DetError, match="1 unmapped and 0 missing keys"):
        convert_mmdet_weights(tmp_path / "mm.pth", tmp_path / "det2.pt", base, strict=True)
    with pytest.raises(DetError, match=r"tensor shapes do not match.*bbox_head.rtm_cls.0.bias: checkpoint \(80,\) vs det \(3,\)"):
        convert_mmdet_weights(tmp_path / "mm.pth", tmp_path / "det3.pt", base, overrides=["model.bbox_head.num_classes=3"])
    with pytest.raises(DetError, match="det.pt: already exists"):
        convert_mmdet_weights(tmp_path / "mm.pth", tmp_path / "det.pt", base)


def test_mmdet_rename_rules():
    t = torch.zeros(1)
    state = {"module.backbone.conv1.weight": t, "module.data_preprocessor.mean": t, "ema_backbone_conv1_weight": t,
             "neck.fpn_convs.0.conv.bias": t}
    renamed, dropped = rename(state, MMDET_RULES)
    assert list(renamed) == ["backbone.conv1.weight", "neck.fpn_convs.0.conv.bias"]
    assert dropped == ["module.data_preprocessor.mean", "ema_backbone_conv1_weight"]


def test_mmdet_mot_rename_rules():
    """MMDetection's MOT models (ByteTrack) hold the detector under `detector.`; the tracker has no weights."""
    t = torch.zeros(1)
    state = {"detector.backbone.stem.conv.conv.weight": t, "module.detector.neck.out_convs.0.conv.weight": t,
             "data_preprocessor.mean": t, "detector.data_preprocessor.std": t, "other.detector.x": t}
    renamed, dropped = rename(state, MMDET_RULES)
    assert list(renamed) == ["backbone.stem.conv.conv.weight", "neck.out_convs.0.conv.weight", "other.detector.x"]
    assert dropped == ["data_preprocessor.mean", "detector.data_preprocessor.std"]


BYTETRACK = "bytetrack/bytetrack_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval"
NARROW = ["model.backbone.widen_factor=0.0625", "model.backbone.deepen_factor=0.33", "model.neck.in_channels=[16,32,64]",
          "model.neck.out_channels=16", "model.neck.num_csp_blocks=1", "model.bbox_head.in_channels=16",
          "model.bbox_head.feat_channels=16"]


def test_bytetrack_checkpoint_converts_strictly(tmp_path):
    """A ByteTrack-layout file (every detector tensor under `detector.`, the MOT model's data
    preprocessor beside it) converts with strict=True onto the ByteTrack preset's YOLOX, tensor for tensor."""
    cfg = load_preset(BYTETRACK, NARROW)
    model = build_detector(cfg["model"])
    randomize_norms(model, 5)
    state = {f"detector.{k}": v for k, v in model.state_dict().items()}
    state["data_preprocessor.mean"] = torch.zeros(3)
    torch.save({"meta": {"dataset_meta": {"classes": ("pedestrian",)}}, "state_dict": state}, tmp_path / "bt.pth")
    info = convert_mmdet_weights(tmp_path / "bt.pth", tmp_path / "det.pt", BYTETRACK, strict=True, overrides=NARROW)
    assert info["unmapped"] == info["missing"] == [] and info["dropped"] == ["data_preprocessor.mean"]
    ckpt = load_checkpoint(tmp_path / "det.pt")
    assert ckpt["meta"]["classes"] == ["pedestrian"] and ckpt["preset"]["tracker"]["type"] == "ByteTrack"
    assert ckpt["preset"]["model"]["bbox_head"]["num_classes"] == 1
    for key, value in model.state_dict().items():
        assert torch.equal(ckpt["state_dict"][key], value), key


def test_torchvision_faster_rcnn_raw_outputs(tmp_path):
    from det.core.models.roi_heads.roi_extractor import boxes_to_rois

    torch.manual_seed(0)
    tv = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
    randomize_norms(tv, 1)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    base = PRESETS / "faster_rcnn_r50_fpn.yaml"
    with pytest.raises(DetError, match="torchvision's faster_rcnn: set model.roi_head.bbox_roi_extractor.roi_layer.aligned=False"):
        convert_torchvision_weights(tmp_path / "tv.pth", tmp_path / "x.pt", preset=base)
    sets = ["model.roi_head.bbox_roi_extractor.roi_layer.aligned=false",
            "model.roi_head.bbox_roi_extractor.roi_layer.sampling_ratio=2"]
    info = convert_torchvision_weights(tmp_path / "tv.pth", tmp_path / "det.pt", preset=base, overrides=sets)
    assert info["unmapped"] == [] and info["missing"] == []
    ckpt = load_checkpoint(tmp_path / "det.pt")
    det = build_detector(ckpt["preset"]["model"]).eval()
    det.load_state_dict(ckpt["state_dict"], strict=True)
    x = torch.randn(1, 3, 128, 160)
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(30, 2, generator=g) * torch.tensor([120.0, 90.0])
    proposals = torch.cat([xy, xy + torch.rand(30, 2, generator=g) * 100 + 4], 1)
    with torch.no_grad():
        feats, tv_feats = det.extract_feat(x), tv.backbone(x)
        for ours, ref in zip(feats, tv_feats.values()):
            assert (ours - ref).abs().max().item() <= 1e-4
        for ours, ref in zip(det.rpn_head(feats), tv.rpn.head(list(tv_feats.values()))):
            assert max((a - b).abs().max().item() for a, b in zip(ours, ref)) <= 1e-4
        cls, reg = det.roi_head(feats, [proposals])
        pooled = tv.roi_heads.box_roi_pool(tv_feats, [proposals], [(128, 160)])
        ref_cls, ref_reg = tv.roi_heads.box_predictor(tv.roi_heads.box_head(pooled))
        ours_pooled = det.roi_head.bbox_roi_extractor(feats[:4], boxes_to_rois([proposals]))
    # det.ops.roi_align and torchvision's kernel sum in another order: equal to float32 rounding
    # (relative ~1e-7); the random norms make these activations large (|x| ~ 1e3), hence a relative bound
    assert (ours_pooled - pooled).abs().max().item() <= 1e-6 * pooled.abs().max().item()
    ref_cls = ref_cls[:, COCO_IDS + [0]]  # background moves last
    ref_reg = ref_reg.reshape(-1, 91, 4)[:, COCO_IDS].reshape(-1, 320)
    for ours, ref in ((cls, ref_cls), (reg, ref_reg)):
        assert ours.shape == ref.shape
        assert (ours - ref).abs().max().item() <= 1e-6 * max(1.0, ref.abs().max().item())
