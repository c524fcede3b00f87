"""Running a model over an evaluation set (sharded over ranks) into an evaluator."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from det.core import dist
from det.core.engine.step import split_batch
from det.core.log import make_progress


@torch.no_grad()
def run_evaluation(model: nn.Module, dataset: Any, collate_fn: Callable | None, evaluator: Any, device: torch.device,
                   batch_size: int | None = None, num_workers: int | None = None, amp_dtype: torch.dtype | None = None,
                   desc: str = "test", predict: Callable | None = None, loader: Any = None,
                   loader_cfg: dict | None = None) -> dict[str, float]:
    """Predict every image of `dataset` (rank r takes images r, r + W, ...), feed the
    evaluator, return its metrics (identical on every rank). `predict(model, inputs, samples)`
    replaces `model.predict` (test-time augmentation). `loader` reuses a built loader;
    otherwise one is built from `loader_cfg` (the preset's loader section) by `build_loader`."""
    if loader is None:
        from det.core.data.loader import build_loader

        if loader_cfg is None and num_workers is None:
            num_workers = 0
        loader = build_loader(dataset, loader_cfg or {}, train=False, rank=dist.get_rank(),
                              world_size=dist.get_world_size(), collate_fn=collate_fn, device_type=device.type,
                              batch_size=batch_size, num_workers=num_workers,
                              persistent_workers=False if loader_cfg is None else None)
    evaluator.reset()
    with make_progress(transient=True) as progress:
        task = progress.add_task(desc, total=len(loader), info="")
        for batch in loader:
            inputs, samples = split_batch(batch)
            inputs = inputs.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                preds = predict(model, inputs, samples) if predict else model.predict(inputs, samples)
            evaluator.process(samples, [p.to("cpu") for p in preds])
            progress.advance(task)
    return evaluator.evaluate()
