"""Import MMDetection's model code from the peer environment although its mmcv is the 'lite'
build without compiled ops: every `mmcv.ops` name resolves to a placeholder that fails only
when called, except `batched_nms` and `RoIAlign` / `roi_align`, which are given torchvision implementations
with mmcv's interface so that MMDetection's own post-processing (decode, score threshold, NMS,
rescale) and RoI heads can run. Used by benchmarks only; det never imports it."""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import types
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common import emit, peer_site_packages  # noqa: E402


class _Unavailable:
    def __init__(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__}: mmcv.ops is not built in the peer environment")


def batched_nms(boxes, scores, idxs, nms_cfg, class_agnostic=False):
    """mmcv.ops.batched_nms's contract: (dets = [boxes, score] sorted by score, kept indices)."""
    cfg = dict(nms_cfg or {})
    if cfg.pop("class_agnostic", class_agnostic):
        idxs = torch.zeros_like(idxs)
    keep = torchvision.ops.batched_nms(boxes.float(), scores.float(), idxs, float(cfg.get("iou_threshold", 0.5)))
    max_num = int(cfg.get("max_num", -1))
    if max_num > 0:
        keep = keep[:max_num]
    return torch.cat([boxes[keep], scores[keep, None]], -1), keep


class RoIAlign(torch.nn.Module):
    """mmcv.ops.RoIAlign's interface ('avg' pooling) on torchvision's roi_align."""

    def __init__(self, output_size, spatial_scale=1.0, sampling_ratio=0, pool_mode="avg", aligned=True,
                 use_torchvision=False):
        super().__init__()
        if pool_mode != "avg":
            raise RuntimeError("only pool_mode='avg' is provided by the stand-in")
        self.output_size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
        self.spatial_scale, self.sampling_ratio, self.aligned = float(spatial_scale), int(sampling_ratio), bool(aligned)

    def forward(self, feats, rois):
        return torchvision.ops.roi_align(feats, rois, self.output_size, self.spatial_scale, self.sampling_ratio,
                                         self.aligned)


def roi_align(feats, rois, output_size, spatial_scale=1.0, sampling_ratio=0, pool_mode="avg", aligned=True):
    """mmcv.ops.roi_align's functional form (MMDetection's mask targets: BitmapMasks.crop_and_resize)."""
    return RoIAlign(output_size, spatial_scale, sampling_ratio, pool_mode, aligned)(feats, rois)


PROVIDED = {"batched_nms": batched_nms, "RoIAlign": RoIAlign, "roi_align": roi_align}


def _deform_attn_spec(fullname: str):
    """Spec of mmcv's own ops/multi_scale_deform_attn.py with a dummy extension loader: its
    MultiScaleDeformableAttention runs multi_scale_deformable_attn_pytorch on CPU tensors."""
    import importlib.util

    import mmcv.utils.ext_loader as ext_loader

    ext_loader.load_ext = lambda *args, **kwargs: types.SimpleNamespace()
    path = os.path.join(os.path.dirname(ext_loader.__file__), "..", "ops", "multi_scale_deform_attn.py")
    return importlib.util.spec_from_file_location(fullname, os.path.abspath(path))


def _mmcv_deform_attn_module():
    import importlib

    return importlib.import_module(DEFORM_ATTN)


DEFORM_ATTN = "mmcv.ops.multi_scale_deform_attn"
# names provided from mmcv's own pure-PyTorch code on first use
LAZY = {"MultiScaleDeformableAttention": lambda: _mmcv_deform_attn_module().MultiScaleDeformableAttention,
        "multi_scale_deformable_attn_pytorch":
            lambda: _mmcv_deform_attn_module().multi_scale_deformable_attn_pytorch}


class _OpsModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name in PROVIDED:
            return PROVIDED[name]
        if name in LAZY:
            return LAZY[name]()
        return type(name, (_Unavailable,), {})


class _OpsFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == DEFORM_ATTN:
            return _deform_attn_spec(fullname)
        if fullname in ("mmcv.ops", "mmcv._ext") or fullname.startswith("mmcv.ops."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _OpsModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        return None


def start_parity(title: str, as_json: bool):
    """Common start of the parity scripts: a few threads, MMDetection loaded and mmengine quiet;
    None (after printing the skip) when MMDetection is absent."""
    import logging

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    peer = load_mmdet()
    if peer is None:
        emit(title, [], ["MMDetection not available: nothing compared"], as_json)
        return None
    logging.getLogger("mmengine").setLevel(logging.ERROR)  # init_weights logs every tensor
    return peer


def run_module_cases(models, cases, run_case, quick: bool, fixture: Path | None) -> list[dict]:
    """Rows of `run_case(models, name, kwargs, size)` over `cases` (the first two with --quick);
    the first case's fixture is saved to `fixture` when given."""
    rows = []
    for i, (name, kwargs, size) in enumerate(cases):
        if quick and i > 1:
            break
        row, data = run_case(models, name, kwargs, size)
        rows.append(row)
        if fixture is not None and i == 0:
            fixture.parent.mkdir(parents=True, exist_ok=True)
            torch.save(data, fixture)
    return rows


def load_mmdet():
    """(MODELS registry, Config class, configs folder) or None when MMDetection is absent."""
    site = peer_site_packages()
    if site is None:
        print("[bench] peer environment not found (set DET_PEERS_ENV)", file=sys.stderr)
        return None
    if site not in sys.path:
        sys.path.append(site)  # after det's own packages: det's torch stays first
    if not any(isinstance(f, _OpsFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _OpsFinder())
    try:
        import mmdet
        import mmdet.models  # noqa: F401
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
        from mmengine.config import Config
    except Exception as exc:  # noqa: BLE001
        print(f"[bench] MMDetection not importable ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None
    register_all_modules()
    return MODELS, Config, os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs")
