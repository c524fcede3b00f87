"""Swin Transformer (MMDetection's `SwinTransformer`): patch embedding, stages of (shifted) window
attention blocks each followed by patch merging, a LayerNorm per output stage (`norm{i}`); names
and shapes as MMDetection's, so its Swin-based checkpoints convert key for key. Returns
(B, C, H, W) maps of the stages in `out_indices` (channels embed_dims * 2**i)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from det.core.config.build import config_path
from det.core.errors import ConfigError
from det.core.models.backbones.swin_layers import PatchEmbed, PatchMerging, SwinBlock
from det.core.models.layers import FrozenStages, freeze


class SwinBlockSequence(nn.Module):
    """`depth` blocks, every second one with shifted windows, then the optional downsample."""

    def __init__(self, embed_dims: int, depth: int, drop_path_rates: Sequence[float],
                 downsample: PatchMerging | None, **block: object) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(embed_dims, shift=i % 2 == 1, drop_path_rate=drop_path_rates[i], **block)  # type: ignore[arg-type]
            for i in range(depth))
        self.downsample = downsample

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor]:
        """-> (input of the next stage, its size, this stage's output tokens)."""
        for block in self.blocks:
            x = block(x, hw)
        if self.downsample is None:
            return x, hw, x
        down, down_hw = self.downsample(x, hw)
        return down, down_hw, x


def _ln_eps(norm_cfg: dict | None) -> float:
    cfg = dict(norm_cfg or {"type": "LN"})
    if cfg.pop("type", "LN") != "LN" or set(cfg) - {"eps", "requires_grad"}:
        raise ConfigError(f"{config_path('norm_cfg')}: SwinTransformer takes {{type: LN, eps: ...}}")
    return float(cfg.get("eps", 1e-5))


def _merge_order(t: torch.Tensor) -> torch.Tensor:
    """Original Swin concatenates the 2x2 neighbours as (0,0) (1,0) (0,1) (1,1) blocks of C;
    unfold orders channel-major with (0,0) (0,1) (1,0) (1,1): reorder the last dimension."""
    lead = t.shape[:-1]
    return t.reshape(*lead, 4, t.shape[-1] // 4)[..., [0, 2, 1, 3], :].transpose(-1, -2).reshape(*lead, -1)


def from_original_swin(state: dict) -> dict:
    """Microsoft's Swin ImageNet checkpoint (`layers.*`, `mlp.fc1`, `patch_embed.proj`) ->
    MMDetection's names; classifier (`head.*`) dropped."""
    out = {}
    for key, value in state.items():
        if key.startswith("head"):
            continue
        if key.startswith("layers."):
            key = "stages." + key[len("layers."):]
            key = key.replace(".attn.", ".attn.w_msa.").replace(".mlp.fc1.", ".ffn.layers.0.0.")
            key = key.replace(".mlp.fc2.", ".ffn.layers.1.")
            if ".downsample." in key:
                value = _merge_order(value)
        elif key.startswith("patch_embed.proj."):
            key = key.replace("patch_embed.proj.", "patch_embed.projection.")
        out[key] = value
    return out


class SwinTransformer(FrozenStages, nn.Module):
    """MMDetection's `SwinTransformer` arguments (Swin-T: embed_dims 96, depths 2-2-6-2, heads 3-6-12-24).
    `convert_weights`: `model.backbone.init` reads Microsoft's original ImageNet layout
    (`from_original_swin`); `pretrain_img_size` sizes the absolute position embedding
    (`use_abs_pos_embed`; inputs must then have that size)."""

    def __init__(self, pretrain_img_size: int | Sequence[int] = 224, in_channels: int = 3, embed_dims: int = 96,
                 patch_size: int = 4, window_size: int = 7, mlp_ratio: int = 4,
                 depths: Sequence[int] = (2, 2, 6, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 strides: Sequence[int] = (4, 2, 2, 2), out_indices: Sequence[int] = (0, 1, 2, 3),
                 qkv_bias: bool = True, qk_scale: float | None = None, patch_norm: bool = True,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 use_abs_pos_embed: bool = False, act_cfg: dict | None = None, norm_cfg: dict | None = None,
                 with_cp: bool = False, convert_weights: bool = False, frozen_stages: int = -1) -> None:
        super().__init__()
        if strides[0] != patch_size:
            raise ConfigError(f"{config_path('strides')}: strides[0] must equal patch_size ({patch_size})")
        if len(num_heads) != len(depths) or len(strides) != len(depths):
            raise ConfigError(f"{config_path('num_heads')}: depths, num_heads and strides need one value per stage")
        if any(not 0 <= i < len(depths) for i in out_indices):
            raise ConfigError(f"{config_path('out_indices')}: {list(out_indices)} outside 0..{len(depths) - 1}")
        eps = _ln_eps(norm_cfg)
        self.out_indices, self.frozen_stages, self.convert_weights = tuple(out_indices), frozen_stages, convert_weights
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size, eps if patch_norm else None)
        self.use_abs_pos_embed = use_abs_pos_embed
        if use_abs_pos_embed:
            size = (pretrain_img_size, pretrain_img_size) if isinstance(pretrain_img_size, int) else pretrain_img_size
            patches = (size[0] // patch_size) * (size[-1] // patch_size)
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, patches, embed_dims))
        self.drop_after_pos = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        channels = embed_dims
        for i, depth in enumerate(depths):
            last = i == len(depths) - 1
            down = None if last else PatchMerging(channels, 2 * channels, strides[i + 1], eps if patch_norm else None)
            self.stages.append(SwinBlockSequence(
                channels, depth, rates[sum(depths[:i]):sum(depths[:i + 1])], down, num_heads=num_heads[i],
                feedforward_channels=mlp_ratio * channels, window_size=window_size, qkv_bias=qkv_bias,
                qk_scale=qk_scale, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate, act_cfg=act_cfg, eps=eps,
                with_cp=with_cp))
            channels = channels if last else 2 * channels
        self.num_features = [embed_dims * 2 ** i for i in range(len(depths))]
        for i in self.out_indices:
            self.add_module(f"norm{i}", nn.LayerNorm(self.num_features[i], eps=eps))
        self.out_channels = [self.num_features[i] for i in self.out_indices]
        self.init_weights()
        self._freeze_stages()

    def adapt_pretrained(self, state: dict) -> dict:
        """Backbone init (det.core.zoo.pretrained): Microsoft's original layout when convert_weights."""
        return from_original_swin(state) if self.convert_weights else state

    def init_weights(self) -> None:
        """From scratch as MMDetection: truncated normal (std 0.02) linears, unit LayerNorms."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.use_abs_pos_embed:
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen: list[nn.Module] = [self.patch_embed, self.drop_after_pos]
        if self.use_abs_pos_embed:
            self.absolute_pos_embed.requires_grad = False
        for i in range(self.frozen_stages):
            frozen += [self.stages[i]] + ([getattr(self, f"norm{i}")] if i in self.out_indices else [])
        freeze(frozen)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, hw = self.patch_embed(x)
        if self.use_abs_pos_embed:
            x = x + self.absolute_pos_embed
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x, next_hw, out = stage(x, hw)
            if i in self.out_indices:
                out = getattr(self, f"norm{i}")(out)
                outs.append(out.view(-1, hw[0], hw[1], self.num_features[i]).permute(0, 3, 1, 2).contiguous())
            hw = next_hw
        return tuple(outs)
