"""Parameters, MACs and FLOPs of a detector's `forward(x)` with torch.utils.flop_counter.

FlopCounterMode counts FLOPs of the matrix ops (convolutions, mm/addmm/bmm, attention, and det's
multi-scale deformable attention: 4 channel vectors blended per sample), 2 per multiply-accumulate. MMDetection's get_flops reports "Flops" that are multiply-accumulates
(MACs), so compare its numbers with `macs` here (= flops / 2). Every other op that computes
something (normalisation, activations, element-wise arithmetic, pooling, resizing) is not
counted; they are listed with their call counts under `uncounted_ops`. They usually add well under
a few percent (MMDetection's counter adds normalisation and upsampling, not activations).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry, register_flop_formula

import det.ops  # noqa: F401  - registers torch.ops.det.*

# Ops that move, view or allocate data: no arithmetic, so not worth a note.
_NO_COMPUTE = {
    "view", "_unsafe_view", "reshape", "permute", "transpose", "t", "expand", "squeeze", "unsqueeze", "slice",
    "select", "split", "split_with_sizes", "chunk", "unbind", "as_strided", "detach", "alias", "clone", "empty",
    "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "new_zeros", "new_empty", "new_ones",
    "new_full", "full", "full_like", "fill_", "fill", "zero_", "contiguous", "_to_copy", "copy_", "lift_fresh", "cat",
    "stack", "flatten", "arange", "to", "_reshape_alias", "index_select", "repeat", "constant_pad_nd", "lift_fresh_copy",
    "set_", "resize_", "unflatten", "narrow", "movedim", "_local_scalar_dense", "index", "gather", "masked_fill",
    "where", "scalar_tensor", "sym_size", "sym_stride", "sym_numel", "is_same_size", "dim", "size", "stride",
}


@register_flop_formula(torch.ops.det.ms_deform_attn)
def _ms_deform_attn_flops(value_shape, shapes_shape, starts_shape, loc_shape, attn_shape, out_shape=None,
                          **_: Any) -> int:
    """Each sample of each (batch, query, head, level, point) blends 4 C-vectors: 4 * C MACs."""
    b, q, heads, levels, points, _ = loc_shape
    return 2 * b * q * heads * levels * points * 4 * value_shape[-1]


class _OpRecorder(TorchDispatchMode):
    """Counts every aten op the forward pass runs."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.counted: set[str] = {str(getattr(p, "__name__", p)).split(".")[-1] for p in flop_registry}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def _fmt_name(name: str) -> str:
    """FlopCounterMode names modules '<RootClass>.<path>'; keep the path (root -> '')."""
    return name.split(".", 1)[1] if "." in name else ""


def count_model(model: torch.nn.Module, shape: tuple[int, int] = (640, 640), depth: int = 2,
                batch: int = 1) -> dict[str, Any]:
    """Run `model(x)` on a (batch, 3, H, W) zero tensor (on the model's device; 'meta' computes
    nothing, only shapes) in eval mode and count."""
    h, w = int(shape[0]), int(shape[1])
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.zeros(batch, 3, h, w, device=device)
    recorder = _OpRecorder()
    # Parameters passed straight into a submodule (DETR's query embeddings) would make the
    # counter's module tracker look for a gradient function that no_grad never builds.
    wanted_grad = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in wanted_grad:
            p.requires_grad_(False)
        with torch.no_grad(), FlopCounterMode(display=False, depth=None) as counter:
            with recorder:
                model(x)
    finally:
        model.train(was_training)
        for p in wanted_grad:
            p.requires_grad_(True)
    total = int(counter.get_total_flops())
    per_module: dict[str, int] = {}
    for name, ops in counter.get_flop_counts().items():
        if name == "Global":
            continue
        per_module[_fmt_name(name)] = int(sum(ops.values()))
    params = {name: sum(p.numel() for p in mod.parameters()) for name, mod in model.named_modules()}
    per_module[""] = total

    def module_flops(name: str, mod: torch.nn.Module) -> int:
        # Containers (ModuleList/ModuleDict) are never called themselves: sum their children.
        if name in per_module:
            return per_module[name]
        return sum(module_flops(f"{name}.{child}" if name else child, sub) for child, sub in mod.named_children())

    rows = []
    for name, mod in model.named_modules():
        level = 0 if name == "" else name.count(".") + 1
        if level > depth:
            continue
        flops = module_flops(name, mod)
        rows.append({"module": name or "(model)", "type": type(mod).__name__, "depth": level,
                     "params": int(params[name]), "flops": flops, "macs": flops // 2,
                     "flops_pct": 100.0 * flops / total if total else 0.0})
    by_op: Counter[str] = Counter()
    for op, n in counter.get_flop_counts().get("Global", {}).items():
        by_op[str(getattr(op, "__name__", op)).split(".")[-1]] += int(n)
    uncounted = {op: n for op, n in sorted(recorder.calls.items())
                 if op not in recorder.counted and op.rstrip("_") not in _NO_COMPUTE and op not in _NO_COMPUTE}
    return {"input_shape": [batch, 3, h, w], "params": int(params[""]), "flops": total, "macs": total // 2,
            "flops_by_op": dict(by_op), "modules": rows, "uncounted_ops": uncounted,
            "note": "MACs = FLOPs / 2; MMDetection's get_flops 'Flops' are MACs. Only matrix ops "
                    "(convolutions, matmuls) are counted; uncounted_ops lists the other ops that ran."}


def count_preset(preset: str, overrides: list[str] | None = None, shape: tuple[int, int] = (640, 640),
                 depth: int = 2) -> dict[str, Any]:
    """Build the preset's model and count it."""
    from det.core.config import load_preset
    from det.core.errors import DetError
    from det.core.models import build_detector

    if min(shape) <= 0:
        raise DetError(f"--shape needs two positive numbers H W, got {list(shape)}")
    if depth < 0:
        raise DetError("--depth must be >= 0")
    cfg = load_preset(preset, list(overrides or []))
    if "model" not in cfg:
        raise DetError(f"{preset}: no 'model' section")
    try:
        # On the meta device nothing is computed or initialised: counting takes a second.
        with torch.device("meta"):
            model = build_detector(cfg["model"])
        result = count_model(model, shape, depth)
        result["device"] = "meta"
    except (NotImplementedError, RuntimeError) as exc:  # an op without a meta kernel
        from det.core.log import get_logger

        get_logger().warning(f"meta-device count failed ({type(exc).__name__}); running the model on CPU")
        model = build_detector(cfg["model"])
        result = count_model(model, shape, depth)
        result["device"] = "cpu"
    result["preset"] = preset
    result["model"] = cfg["model"].get("type")
    return result
