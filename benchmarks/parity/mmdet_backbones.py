"""Parity: det's ResNeXt against MMDetection's own `ResNeXt` module (peer environment).

Run with det's python (MMDetection is imported from the peer environment, on det's torch):
    DET_PEERS_ENV=/work/peers-env .venv/bin/python benchmarks/parity/mmdet_backbones.py [--write-fixture]
Each case builds MMDetection's module, randomises every weight and norm statistic, loads the same
state dict into det's module by name (strict: the key layouts must be identical) and compares the
outputs of every stage on a random image in eval mode; the bound is 1e-5. `--write-fixture` stores
the smallest case (weights, input, MMDetection's outputs) as tests/core/models/fixtures/resnext_mmdet.pt,
which CI checks det against without the peer.
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
FIXTURE = REPO / "tests" / "core" / "models" / "fixtures" / "resnext_mmdet.pt"
# name, MMDetection / det kwargs (identical), input size
CASES = [
    ("resnext50-4x4d-base8", {"depth": 50, "groups": 4, "base_width": 4, "base_channels": 8}, 64),
    ("resnext101-32x4d", {"depth": 101, "groups": 32, "base_width": 4}, 128),
    ("resnext101-64x4d", {"depth": 101, "groups": 64, "base_width": 4}, 96),
    ("resnext50-32x4d-caffe", {"depth": 50, "groups": 32, "base_width": 4, "style": "caffe"}, 96),
]


def randomize(state: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            out[key] = value
        elif key.endswith("running_var"):
            out[key] = 0.5 + torch.rand(value.shape, generator=g)
        elif value.dim() == 4:  # conv weights at a scale that keeps 100 layers finite
            fan_in = value[0].numel()
            out[key] = torch.randn(value.shape, generator=g) * (1.0 / fan_in) ** 0.5
        else:
            out[key] = 0.1 * torch.randn(value.shape, generator=g) + (1.0 if key.endswith(".weight") else 0.0)
    return out


def run_case(MODELS, name: str, kwargs: dict, size: int) -> tuple[dict, dict]:
    from det.core.models.backbones import ResNeXt

    mm = MODELS.build({"type": "ResNeXt", "out_indices": (0, 1, 2, 3), **kwargs})
    mm.eval()  # MMDetection's ResNet.train() returns None, so no chaining
    state = randomize(mm.state_dict(), 0)
    mm.load_state_dict(state)
    det = ResNeXt(out_indices=(0, 1, 2, 3), **kwargs).eval()
    det.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mm_out, det_out = mm(x), det(x)
    diffs = [float((a - b).abs().max()) for a, b in zip(mm_out, det_out)]
    scale = max(float(a.abs().max()) for a in mm_out)
    row = {"case": name, "tensors": len(state), "max_abs": max(diffs), "max_output": scale,
           "within_1e-5": max(diffs) <= BOUND}
    return row, {"kwargs": kwargs, "state_dict": state, "input": x, "outputs": list(mm_out)}


def main() -> int:
    parser = arg_parser("det's ResNeXt vs MMDetection's ResNeXt")
    parser.add_argument("--write-fixture", action="store_true")
    args = parser.parse_args()
    peer = start_parity("backbone parity", args.json)
    if peer is None:
        return 0
    rows = run_module_cases(peer[0], CASES, run_case, args.quick, FIXTURE if args.write_fixture else None)
    emit("backbone parity (det vs MMDetection modules, same random weights, eval mode)", rows,
         [f"bound {BOUND}; outputs of all four stages compared"], args.json)
    return 0 if all(r["within_1e-5"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
