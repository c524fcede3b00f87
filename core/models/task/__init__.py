"""Task modules of dense heads: prior generators, box coders, assigners, samplers."""
from det.core.models.task.assigners import (
    ASSIGNERS,
    AssignResult,
    ATSSAssigner,
    DynamicSoftLabelAssigner,
    MaxIoUAssigner,
)
from det.core.models.task.hungarian_assigner import HungarianAssigner
from det.core.models.task.match_costs import MATCH_COSTS
from det.core.models.task.coders import CODERS, DeltaXYWHBBoxCoder, DistancePointBBoxCoder
from det.core.models.task.prior_generators import PRIOR_GENERATORS, AnchorGenerator, MlvlPointGenerator
from det.core.models.task.random_sampler import RandomSampler
from det.core.models.task.samplers import SAMPLERS, PseudoSampler, SamplingResult
from det.core.models.task.tv_anchor_generator import TorchvisionAnchorGenerator
from det.core.models.task.tv_box_coder import TorchvisionDeltaXYWHBBoxCoder

SAMPLERS["RandomSampler"] = RandomSampler
PRIOR_GENERATORS["TorchvisionAnchorGenerator"] = TorchvisionAnchorGenerator
CODERS["TorchvisionDeltaXYWHBBoxCoder"] = TorchvisionDeltaXYWHBBoxCoder
ASSIGNERS["HungarianAssigner"] = HungarianAssigner

__all__ = [
    "ASSIGNERS", "ATSSAssigner", "AnchorGenerator", "AssignResult", "CODERS", "DeltaXYWHBBoxCoder",
    "DistancePointBBoxCoder", "DynamicSoftLabelAssigner", "MaxIoUAssigner", "MlvlPointGenerator",
    "HungarianAssigner", "MATCH_COSTS",
    "PRIOR_GENERATORS", "PseudoSampler", "RandomSampler", "SAMPLERS", "SamplingResult", "TorchvisionAnchorGenerator",
    "TorchvisionDeltaXYWHBBoxCoder",
]
