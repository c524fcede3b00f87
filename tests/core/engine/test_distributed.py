"""2-process DDP on CPU (gloo): ranks stay identical and match one process with the same total
batch; evaluation gathers every rank's predictions."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from det.core import dist
from det.core.dist import slurm_master_addr
from det.core.engine import Trainer, seed_everything
from det.core.evaluation.evaluator import VOCMetric
from engine_tiny import SquaresDataset, TinyDet, collate

CFG = {"max_iters": 4, "log_interval": 1, "val_interval": 4, "optimizer": {"type": "SGD", "lr": 0.05, "momentum": 0.9},
       "checkpoint": {"interval": 4}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(work_dir: str, batch_size: int) -> tuple[dict, dict]:
    seed_everything(dist.get_rank())  # different weights per rank: DDP must broadcast rank 0's
    model = TinyDet()
    ds, vds = SquaresDataset(16, augment=False), SquaresDataset(7, augment=False)
    t = Trainer(model, CFG, work_dir, train_dataset=ds, collate_fn=collate, batch_size=batch_size,
                val_dataset=vds, evaluator=VOCMetric(vds), seed=0)
    result = t.fit()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, result


def _worker(rank: int, port: int, work_dir: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_distributed(torch.device("cpu"))
    try:
        state, result = _train(work_dir, batch_size=2)
        torch.save({"state": state, "metrics": result["metrics"]}, f"{out}.{rank}")
    finally:
        dist.destroy()


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(tmp_path):
    out = str(tmp_path / "state")
    mp.spawn(_worker, args=(_free_port(), str(tmp_path / "ddp"), out), nprocs=2, join=True)
    r0, r1 = torch.load(f"{out}.0", weights_only=True), torch.load(f"{out}.1", weights_only=True)
    for name in r0["state"]:
        assert torch.equal(r0["state"][name], r1["state"][name]), f"{name} differs between ranks"
    single, result = _train(str(tmp_path / "single"), batch_size=4)
    for name, value in single.items():
        assert torch.allclose(r0["state"][name], value, atol=1e-5, rtol=0), f"{name}: DDP != single process"
    assert r0["metrics"] == r1["metrics"] == result["metrics"]
    # only rank 0 wrote files
    assert (tmp_path / "ddp" / "iter_4.pt").exists() and (tmp_path / "ddp" / "log.jsonl").exists()


def test_slurm_master_address_from_nodelist():
    assert slurm_master_addr("node[03-05,7],gpu1") == "node03"
    assert slurm_master_addr("gpu17") == "gpu17"
    assert slurm_master_addr("a1,b2") == "a1"
