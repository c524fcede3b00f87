"""det.ops.roi_align under CPU bf16 autocast: bfloat16 features are cast to float32 (the kernel
is float32/float64), with the same values and gradients as float32 features cast up by hand."""
import torch

from det.ops import roi_align


def test_roi_align_bf16_autocast_runs_in_float32():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(1, 4, 16, 16, generator=g).bfloat16().requires_grad_()
    rois = torch.tensor([[0.0, 1.0, 2.0, 9.5, 11.0], [0.0, 4.0, 0.0, 15.0, 7.0]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = roi_align(feat, rois, 3, 1.0, 2, False)
    assert out.dtype == torch.float32
    out.sum().backward()
    ref_feat = feat.detach().float().requires_grad_()
    ref = roi_align(ref_feat, rois, 3, 1.0, 2, False)
    ref.sum().backward()
    assert torch.equal(out, ref)
    assert feat.grad.dtype == torch.bfloat16
    assert torch.allclose(feat.grad.float(), ref_feat.grad, atol=1e-2)
