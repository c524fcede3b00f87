"""Transformer parts of the DETR family (MMDetection's module and parameter names, so that its
checkpoints load with a plain state-dict copy)."""
from det.core.models.transformer.attention import FFN, MultiheadAttention, make
from det.core.models.transformer.positional_encoding import SinePositionalEncoding

__all__ = ["FFN", "MultiheadAttention", "SinePositionalEncoding", "make"]
