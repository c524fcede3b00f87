"""Swin Transformer's parts in MMDetection's module names: (shifted) window attention with a
relative position bias, the block and its MLP, patch embedding and patch merging. Tokens are
(B, H*W, C) with the map size passed alongside."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from det.core.models.layers import build_act

MASKED = -100.0  # MMDetection's (and Swin's) additive mask between tokens of different regions


class DropPath(nn.Module):
    """Stochastic depth: zero a whole sample's residual branch with probability p in training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


def relative_position_index(wh: int, ww: int) -> torch.Tensor:
    """(wh*ww, wh*ww) index into the bias table: (dy + wh - 1) * (2 ww - 1) + (dx + ww - 1)."""
    ys, xs = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + wh - 1
    dx = xs[:, None] - xs[None, :] + ww - 1
    return dy * (2 * ww - 1) + dx


def to_windows(x: torch.Tensor, w: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/w * W/w, w*w, C), windows in row-major order per image."""
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def from_windows(windows: torch.Tensor, w: int, h: int, wd: int) -> torch.Tensor:
    """Inverse of `to_windows` -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, wd, c)


def shift_mask(h: int, wd: int, w: int, shift: int, device: torch.device) -> torch.Tensor:
    """(nW, w*w, w*w) additive mask for shifted windows: tokens that came from different regions
    of the rolled map (3 x 3 regions cut at -w and -shift) do not attend to each other."""
    region = torch.zeros(h, wd, device=device)
    cuts_h = (slice(0, -w), slice(-w, -shift), slice(-shift, None))
    cuts_w = (slice(0, -w), slice(-w, -shift), slice(-shift, None))
    for i, sh in enumerate(cuts_h):
        for j, sw in enumerate(cuts_w):
            region[sh, sw] = i * 3 + j
    ids = to_windows(region[None, :, :, None], w).squeeze(-1)
    diff = ids[:, None, :] - ids[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, MASKED)


class WindowMSA(nn.Module):
    """Multi-head self-attention inside windows with a learned relative position bias."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, qkv_bias: bool = True,
                 qk_scale: float | None = None, attn_drop_rate: float = 0.0, proj_drop_rate: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = (window_size, window_size)
        self.scale = qk_scale or (embed_dims // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size, window_size))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop_rate)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(b // nw, nw, self.num_heads, n, n) + mask[None, :, None]).view(b, self.num_heads, n, n)
        attn = self.attn_drop(attn.softmax(dim=-1))
        return self.proj_drop(self.proj((attn @ v).transpose(1, 2).reshape(b, n, c)))


class ShiftWindowMSA(nn.Module):
    """Window attention on the map padded to whole windows, cyclically shifted by `shift_size`."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, shift_size: int = 0,
                 drop_path_rate: float = 0.0, **attn: object) -> None:
        super().__init__()
        self.window_size, self.shift_size = window_size, shift_size
        self.w_msa = WindowMSA(embed_dims, num_heads, window_size, **attn)  # type: ignore[arg-type]
        self.drop = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        b, _, c = x.shape
        h, wd = hw
        w, s = self.window_size, self.shift_size
        x = F.pad(x.view(b, h, wd, c), (0, 0, 0, (w - wd % w) % w, 0, (w - h % w) % w))
        hp, wp = x.shape[1], x.shape[2]
        mask = None
        if s > 0:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
            mask = shift_mask(hp, wp, w, s, x.device)
        out = from_windows(self.w_msa(to_windows(x, w), mask=mask), w, hp, wp)
        if s > 0:
            out = torch.roll(out, shifts=(s, s), dims=(1, 2))
        return self.drop(out[:, :h, :wd, :].reshape(b, h * wd, c))


class FFN(nn.Module):
    """MMCV's FFN with two layers: fc -> act -> dropout -> fc -> dropout, added to the identity
    through stochastic depth (names `layers.0.0`, `layers.1`)."""

    def __init__(self, embed_dims: int, feedforward_channels: int, act_cfg: dict | None = None,
                 ffn_drop: float = 0.0, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        act = build_act(act_cfg or {"type": "GELU"})
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, feedforward_channels), act, nn.Dropout(ffn_drop)),
            nn.Linear(feedforward_channels, embed_dims), nn.Dropout(ffn_drop))
        self.dropout_layer = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return identity + self.dropout_layer(self.layers(x))


class SwinBlock(nn.Module):
    """LN -> (shifted) window attention -> residual; LN -> FFN -> residual."""

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int, window_size: int = 7,
                 shift: bool = False, qkv_bias: bool = True, qk_scale: float | None = None, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0, act_cfg: dict | None = None,
                 eps: float = 1e-5, with_cp: bool = False) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = nn.LayerNorm(embed_dims, eps=eps)
        self.attn = ShiftWindowMSA(embed_dims, num_heads, window_size, window_size // 2 if shift else 0,
                                   drop_path_rate, qkv_bias=qkv_bias, qk_scale=qk_scale,
                                   attn_drop_rate=attn_drop_rate, proj_drop_rate=drop_rate)
        self.norm2 = nn.LayerNorm(embed_dims, eps=eps)
        self.ffn = FFN(embed_dims, feedforward_channels, act_cfg, drop_rate, drop_path_rate)

    def _forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), hw)
        return self.ffn(self.norm2(x), identity=x)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            from torch.utils.checkpoint import checkpoint

            return checkpoint(self._forward, x, hw, use_reentrant=False)
        return self._forward(x, hw)


class PatchEmbed(nn.Module):
    """Non-overlapping patches: pad right/bottom to whole patches, conv (`projection`), LN."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int, eps: float | None = 1e-5) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims, eps=eps) if eps is not None else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        p = self.patch_size
        x = self.projection(F.pad(x, (0, (p - x.shape[-1] % p) % p, 0, (p - x.shape[-2] % p) % p)))
        hw = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        return (self.norm(x) if self.norm is not None else x), hw


class PatchMerging(nn.Module):
    """2x2 neighbourhoods (stride `stride`, map padded right/bottom) concatenated channel-major as
    torch's unfold orders them, LN over the 4C values, linear reduction to `out_channels`."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, eps: float | None = 1e-5) -> None:
        super().__init__()
        self.stride, self.out_channels = stride, out_channels
        self.norm = nn.LayerNorm(4 * in_channels, eps=eps) if eps is not None else None
        self.reduction = nn.Linear(4 * in_channels, out_channels, bias=False)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        b, _, c = x.shape
        s = self.stride
        x = x.view(b, hw[0], hw[1], c).permute(0, 3, 1, 2)
        pad_h, pad_w = max(-(-hw[0] // s) * s - s + 2 - hw[0], 0), max(-(-hw[1] // s) * s - s + 2 - hw[1], 0)
        x = F.pad(x, (0, pad_w, 0, pad_h))
        out_hw = ((x.shape[2] - 2) // s + 1, (x.shape[3] - 2) // s + 1)
        x = F.unfold(x, kernel_size=2, stride=s).transpose(1, 2)
        x = self.norm(x) if self.norm is not None else x
        return self.reduction(x), out_hw
