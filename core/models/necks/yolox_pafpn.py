"""YOLOX-PAFPN: CSPNeXt-PAFPN's top-down and bottom-up paths with Darknet-bottleneck CSP layers and
a 1x1 conv per output level (MMDetection's YOLOXPAFPN, same module names)."""
from __future__ import annotations

from collections.abc import Sequence

from det.core.models.backbones.csp_darknet import SWISH, kaiming_uniform_init
from det.core.models.necks.cspnext_pafpn import CSPNeXtPAFPN


class YOLOXPAFPN(CSPNeXtPAFPN):
    use_cspnext_block = False
    out_kernel_size = 1

    def __init__(self, in_channels: Sequence[int], out_channels: int, num_csp_blocks: int = 3,
                 use_depthwise: bool = False, upsample_cfg: dict | None = None, norm_cfg: dict | None = None,
                 act_cfg: dict | None = None) -> None:
        super().__init__(in_channels, out_channels, num_csp_blocks, use_depthwise, expand_ratio=0.5,
                         upsample_cfg=upsample_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg or SWISH)
        kaiming_uniform_init(self)
