"""Parity: det's SwinTransformer against MMDetection's own `SwinTransformer` module (peer environment).

Run with det's python (MMDetection is imported from the peer environment, on det's torch):
    DET_PEERS_ENV=/work/peers-env .venv/bin/python benchmarks/parity/mmdet_swin.py [--write-fixture]
Each case builds MMDetection's module, randomises every weight (relative position bias tables
included), checks that det builds the same relative position index on its own, loads the state
dict into det's module by name (strict: identical key layouts) and compares the outputs of every
output stage on random images in eval mode (sizes that are not multiples of the window or the
patch, so padding, shifted-window masks and odd patch merging are exercised); the bound is 1e-5.
`--write-fixture` stores the smallest case (kwargs, weights, input, MMDetection's outputs) as
tests/fixtures/swin_mmdet.pt, which CI checks det against without the peer.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "benchmarks" / "parity"))
from common import arg_parser, emit  # noqa: E402
from mmdet_peer import run_module_cases, start_parity  # noqa: E402

BOUND = 1e-5
FIXTURE = REPO / "tests" / "fixtures" / "swin_mmdet.pt"
# name, MMDetection / det kwargs (identical), input (batch, height, width)
CASES = [
    ("swin-tiny-fixture", {"embed_dims": 32, "depths": (2, 2, 1), "num_heads": (1, 2, 4), "strides": (4, 2, 2),
                           "out_indices": (0, 1, 2), "window_size": 7}, (2, 100, 76)),
    ("swin-t (Mask R-CNN Swin-T config)", {"embed_dims": 96, "depths": (2, 2, 6, 2), "num_heads": (3, 6, 12, 24),
                                           "window_size": 7, "mlp_ratio": 4, "qkv_bias": True, "drop_path_rate": 0.2,
                                           "patch_norm": True, "out_indices": (0, 1, 2, 3)}, (1, 224, 160)),
    ("swin window 12, abs pos embed", {"embed_dims": 48, "depths": (2, 2, 4, 2), "num_heads": (2, 4, 8, 16),
                                       "window_size": 12, "pretrain_img_size": 192, "use_abs_pos_embed": True,
                                       "out_indices": (1, 2, 3)}, (1, 192, 192)),
]


def randomize(state: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state.items():
        if not value.is_floating_point():  # relative_position_index
            out[key] = value
        elif "norm" in key and key.endswith(".weight"):
            out[key] = 1.0 + 0.1 * torch.randn(value.shape, generator=g)
        elif value.dim() >= 2 and "table" not in key and "pos_embed" not in key:
            out[key] = torch.randn(value.shape, generator=g) * (1.0 / value[0].numel()) ** 0.5
        else:
            out[key] = 0.5 * torch.randn(value.shape, generator=g)
    return out


def run_case(MODELS, name: str, kwargs: dict, shape: tuple[int, int, int]) -> tuple[dict, dict]:
    from det.core.models.backbones import SwinTransformer

    mm = MODELS.build({"type": "SwinTransformer", **kwargs})
    mm.eval()
    state = randomize(mm.state_dict(), 0)
    mm.load_state_dict(state)
    det = SwinTransformer(**kwargs).eval()
    own_index = {k: v for k, v in det.state_dict().items() if k.endswith("relative_position_index")}
    same_index = all(torch.equal(v, state[k]) for k, v in own_index.items()) and len(own_index) > 0
    det.load_state_dict(state, strict=True)
    x = torch.randn(shape[0], 3, shape[1], shape[2], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mm_out, det_out = mm(x), det(x)
    diffs = [float((a - b).abs().max()) for a, b in zip(mm_out, det_out, strict=True)]
    row = {"case": name, "input": "x".join(map(str, shape)), "tensors": len(state), "same_rel_index": same_index,
           "max_abs": max(diffs), "max_output": max(float(a.abs().max()) for a in mm_out),
           "within_1e-5": max(diffs) <= BOUND and same_index}
    return row, {"kwargs": kwargs, "state_dict": state, "input": x, "outputs": list(mm_out)}


def original_names(state: dict) -> dict:
    """Random tensors under Microsoft's original Swin names for MMDetection's Swin state dict."""
    g = torch.Generator().manual_seed(2)
    out = {"head.weight": torch.randn(10, 8, generator=g), "norm.weight": torch.randn(8, generator=g)}
    for key, value in state.items():
        key = key.replace("stages.", "layers.", 1).replace("attn.w_msa.", "attn.")
        key = key.replace("ffn.layers.0.0.", "mlp.fc1.").replace("ffn.layers.1.", "mlp.fc2.")
        key = key.replace("patch_embed.projection.", "patch_embed.proj.")
        out[key] = torch.randn(value.shape, generator=g) if value.is_floating_point() else value
    return out


def converter_row(MODELS) -> dict:
    """det's from_original_swin against MMDetection's swin_converter on a Swin-T-shaped file."""
    from mmdet.models.backbones.swin import swin_converter

    from det.core.models.backbones.swin import from_original_swin

    original = original_names(MODELS.build({"type": "SwinTransformer"}).state_dict())
    theirs = {k[len("backbone."):]: v for k, v in swin_converter(original).items()}
    mine = from_original_swin(original)
    same = sorted(theirs) == sorted(mine) and all(torch.equal(mine[k], theirs[k]) for k in theirs)
    return {"case": "from_original_swin vs swin_converter (Swin-T)", "input": "-", "tensors": len(mine),
            "same_rel_index": "-", "max_abs": 0.0 if same else float("nan"), "max_output": "-", "within_1e-5": same}


def main() -> int:
    parser = arg_parser("det's SwinTransformer vs MMDetection's SwinTransformer")
    parser.add_argument("--write-fixture", action="store_true")
    args = parser.parse_args()
    peer = start_parity("Swin parity", args.json)
    if peer is None:
        return 0
    rows = run_module_cases(peer[0], CASES, run_case, args.quick, FIXTURE if args.write_fixture else None)
    rows.append(converter_row(peer[0]))
    emit("Swin parity (det vs MMDetection modules, same random weights, eval mode)", rows,
         [f"bound {BOUND}; every output stage compared; det's own relative position index checked"], args.json)
    return 0 if all(r["within_1e-5"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
