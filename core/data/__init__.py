"""Data: datasets, transforms, samplers, loaders and synthetic generators.

Entry points: `build_dataset(cfg)`, `build_pipeline(list_of_cfgs)`,
`build_dataloader(loader_cfg, shuffle=..., seed=...)`."""
from det.core.data.loader import build_dataloader, build_dataset, collate
from det.core.data.transforms import build_pipeline

__all__ = ["build_dataloader", "build_dataset", "build_pipeline", "collate"]
