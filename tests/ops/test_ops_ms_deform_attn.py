"""det.ops.ms_deform_attn against a grid_sample reference (tests/ops/ops_refs.py): values,
gradients, gradcheck in float64, odd shapes, bf16 autocast, fake tensors and bad input."""
from __future__ import annotations

import pytest
import torch

from det.ops import ms_deform_attn
from det.ops.ms_deform_attn import ms_deform_attn_pytorch
from tests.ops.ops_refs import ms_deform_attn_ref


def make_inputs(shapes, b=2, q=5, heads=2, c=3, points=2, spread=0.0, dtype=torch.float32, seed=0):
    """Random op inputs; `spread` > 0 pushes locations outside [0, 1] (outside the map)."""
    g = torch.Generator().manual_seed(seed)
    shapes_t = torch.tensor(shapes, dtype=torch.int64)
    areas = shapes_t.prod(1)
    starts = torch.cat([areas.new_zeros(1), areas.cumsum(0)[:-1]])
    n, levels = int(areas.sum()), len(shapes)
    value = torch.randn(b, n, heads, c, generator=g, dtype=dtype)
    loc = torch.rand(b, q, heads, levels, points, 2, generator=g, dtype=dtype) * (1 + 2 * spread) - spread
    attn = torch.rand(b, q, heads, levels, points, generator=g, dtype=dtype).softmax(-1)
    return value, shapes_t, starts, loc, attn


CASES = {
    "four_levels": [(8, 10), (4, 5), (2, 3), (1, 2)],
    "one_level": [(7, 5)],
    "one_by_one_maps": [(1, 1), (1, 1)],
    "thin_maps": [(1, 9), (6, 1)],
}


@pytest.mark.parametrize("spread", [0.0, 0.3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_and_gradients_match_grid_sample(case, spread):
    value, shapes, starts, loc, attn = make_inputs(CASES[case], spread=spread)
    leaves = [t.clone().requires_grad_() for t in (value, loc, attn)]
    refs = [t.clone().requires_grad_() for t in (value, loc, attn)]
    out = ms_deform_attn(leaves[0], shapes, starts, leaves[1], leaves[2])
    ref = ms_deform_attn_ref(refs[0], shapes, refs[1], refs[2])
    assert out.shape == (2, 5, 6)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    out.backward(grad)
    ref.backward(grad)
    for got, want in zip(leaves, refs):
        torch.testing.assert_close(got.grad, want.grad, atol=1e-4, rtol=0)


def test_points_outside_the_map_read_zeros():
    value, shapes, starts, loc, attn = make_inputs([(4, 4)])
    loc[..., 0] = -0.2  # x < -0.5 px from the left edge: wholly outside
    out = ms_deform_attn(value, shapes, starts, loc, attn)
    assert torch.equal(out, torch.zeros_like(out))


def test_pixel_centre_reads_that_pixel():
    value, shapes, starts, loc, attn = make_inputs([(3, 4)], b=1, q=1, heads=1, points=1)
    loc[...] = torch.tensor([(2 + 0.5) / 4, (1 + 0.5) / 3])  # x = column 2, y = row 1
    attn[...] = 1.0
    out = ms_deform_attn(value, shapes, starts, loc, attn)
    torch.testing.assert_close(out[0, 0], value[0, 1 * 4 + 2, 0])


@pytest.mark.parametrize("case", ["four_levels", "one_by_one_maps"])
def test_gradcheck_float64(case):
    value, shapes, starts, loc, attn = make_inputs(CASES[case], b=1, q=3, heads=2, c=2, spread=0.1,
                                                   dtype=torch.float64)
    inputs = (value.requires_grad_(), shapes, starts, loc.requires_grad_(), attn.requires_grad_())
    assert torch.autograd.gradcheck(lambda v, s, i, l_, a: ms_deform_attn(v, s, i, l_, a), inputs)


def test_pytorch_path_matches_reference():
    value, shapes, starts, loc, attn = make_inputs(CASES["four_levels"], spread=0.2)
    torch.testing.assert_close(ms_deform_attn_pytorch(value, shapes, loc, attn),
                               ms_deform_attn_ref(value, shapes, loc, attn), atol=1e-5, rtol=0)


def test_bf16_autocast_runs_in_float32():
    value, shapes, starts, loc, attn = make_inputs(CASES["four_levels"])
    v16 = value.bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ms_deform_attn(v16, shapes, starts, loc.bfloat16(), attn.bfloat16())
    assert out.dtype == torch.float32
    out.sum().backward()
    assert v16.grad.dtype == torch.bfloat16
    ref = ms_deform_attn(value.bfloat16().float(), shapes, starts, loc.bfloat16().float(), attn.bfloat16().float())
    torch.testing.assert_close(out, ref)


def test_fake_tensor_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    value, shapes, starts, loc, attn = make_inputs(CASES["four_levels"])
    with FakeTensorMode() as mode:
        args = [mode.from_tensor(t) for t in (value, shapes, starts, loc, attn)]
        out = torch.ops.det.ms_deform_attn(*args)
        gv, gl, ga = torch.ops.det.ms_deform_attn_backward(out, *args)
    assert tuple(out.shape) == (2, 5, 6)
    assert (gv.shape, gl.shape, ga.shape) == (value.shape, loc.shape, attn.shape)


def test_level_outside_value_is_a_clear_error():
    value, shapes, starts, loc, attn = make_inputs(CASES["four_levels"])
    with pytest.raises(RuntimeError, match="does not fit"):
        ms_deform_attn(value[:, :10], shapes, starts, loc, attn)
