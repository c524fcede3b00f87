"""Python APIs over trained checkpoints: `Detector` (used by `det infer`)."""
from det.core.apis.detector import Detector, inference_pipeline_cfg

__all__ = ["Detector", "inference_pipeline_cfg"]
