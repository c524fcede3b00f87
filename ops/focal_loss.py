"""Sigmoid focal loss with a fused forward+backward kernel (torch.ops.det.sigmoid_focal_loss)."""
from __future__ import annotations

import torch
import torchvision
from torch import Tensor

from det.ops._ext import _C, has_kernel  # noqa: F401  - _C registers torch.ops.det.*

REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


class _SigmoidFocalLoss(torch.autograd.Function):
    """Forward computes the loss and d loss / d inputs in one pass; backward scales the saved gradient."""

    @staticmethod
    def forward(ctx, inputs: Tensor, targets: Tensor, weight: Tensor | None, alpha: float, gamma: float,
                reduction: int) -> Tensor:
        loss, grad = torch.ops.det.sigmoid_focal_loss(inputs, targets, weight, alpha, gamma, reduction,
                                                      ctx.needs_input_grad[0])
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None, None, None, None


def _weight_for(inputs: Tensor, weight: Tensor) -> Tensor:
    """Weights the kernel accepts: one per element, or one per row (leading dims of inputs)."""
    weight = weight.detach().to(inputs.dtype)
    if weight.shape == inputs.shape:
        return weight
    lead = inputs.shape[:-1]
    if inputs.dim() >= 1 and weight.shape in (lead, (*lead, 1)):
        return weight.reshape(lead)
    try:
        return weight.expand(inputs.shape)
    except RuntimeError:
        raise ValueError(f"weight of shape {tuple(weight.shape)} does not broadcast to inputs "
                         f"{tuple(inputs.shape)}") from None


def sigmoid_focal_loss(inputs: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0,
                       reduction: str = "none", weight: Tensor | None = None) -> Tensor:
    """Focal loss on logits: ``alpha_t * (1 - p_t)**gamma * BCE(inputs, targets)``.

    Same values as ``torchvision.ops.sigmoid_focal_loss`` (alpha < 0 disables the alpha
    weighting), computed with its gradient in one pass: faster and with less memory.

    Args:
        inputs: (*) float32/float64 logits, e.g. (N, C).
        targets: (*) same shape, float in [0, 1] (one-hot or soft targets). Treated as a
            constant: no gradient flows to it.
        alpha: weight of the positive class (in [0, 1]); negative to disable.
        gamma: focusing exponent (>= 0).
        reduction: 'none' (same shape as inputs), 'mean' or 'sum' (scalars).
        weight: optional per-element weights (same shape, or broadcastable to inputs, e.g. (N,)
            or (N, 1) per row); applied to each element's loss; treated as a constant.

    Returns:
        Tensor of the loss, dtype of inputs.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
    if targets.shape != inputs.shape:
        raise ValueError(f"targets shape {tuple(targets.shape)} must equal inputs shape {tuple(inputs.shape)}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if inputs.is_cuda and not has_kernel("sigmoid_focal_loss", "CUDA"):
        loss = torchvision.ops.sigmoid_focal_loss(inputs, targets.to(inputs.dtype), alpha, gamma, "none")
        if weight is not None:
            w = _weight_for(inputs, weight)
            loss = loss * (w if w.shape == inputs.shape else w.unsqueeze(-1))
        return loss if reduction == "none" else (loss.mean() if reduction == "mean" else loss.sum())
    if inputs.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"inputs must be float32 or float64, got {inputs.dtype}")
    w = None if weight is None else _weight_for(inputs, weight)
    return _SigmoidFocalLoss.apply(inputs, targets.detach(), w, float(alpha), float(gamma), REDUCTIONS[reduction])


@torch.library.register_fake("det::sigmoid_focal_loss")
def _sigmoid_focal_loss_fake(inputs, targets, weight, alpha, gamma, reduction, compute_grad):
    loss = torch.empty_like(inputs) if reduction == 0 else inputs.new_empty(())
    return loss, (torch.empty_like(inputs) if compute_grad else inputs.new_empty((0,)))
