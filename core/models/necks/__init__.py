"""Necks: fuse backbone feature maps into the pyramid the heads consume."""
from det.core.models.necks.channel_mapper import ChannelMapper
from det.core.models.necks.cspnext_pafpn import CSPNeXtPAFPN
from det.core.models.necks.fpn import FPN, PAFPN
from det.core.models.necks.yolox_pafpn import YOLOXPAFPN

NECKS = {"FPN": FPN, "PAFPN": PAFPN, "CSPNeXtPAFPN": CSPNeXtPAFPN}
NECKS["ChannelMapper"] = ChannelMapper
NECKS["YOLOXPAFPN"] = YOLOXPAFPN

__all__ = ["ChannelMapper", "CSPNeXtPAFPN", "FPN", "NECKS", "PAFPN", "YOLOXPAFPN"]
