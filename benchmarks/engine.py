"""Engine benchmarks: VOC mAP (det.core.evaluation.voc) beside MMDetection's eval_map (same
inputs, same process, values compared), and the Trainer's per-iteration overhead beside a bare
PyTorch loop on the same small model."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arg_parser, emit, import_peer, median_ms  # noqa: E402


def _voc_case(num_images: int, num_classes: int, seed: int = 0):
    r = np.random.default_rng(seed)
    dets, gts, labels, ignores = [], [], [], []
    for _ in range(num_images):
        n = int(r.integers(1, 15))
        xy = r.uniform(0, 400, (n, 2))
        wh = r.uniform(10, 200, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        lab = r.integers(0, num_classes, n)
        ign = r.random(n) < 0.1
        per_class = []
        for c in range(num_classes):
            g = boxes[lab == c]
            d = g + r.normal(0, 8, g.shape)
            extra = int(r.integers(0, 4))
            fxy = r.uniform(0, 400, (extra, 2))
            fp = np.concatenate([fxy, fxy + r.uniform(10, 100, (extra, 2))], 1)
            all_d = np.concatenate([d, fp])
            per_class.append(np.concatenate([all_d, r.random((len(all_d), 1))], 1).astype(np.float32))
        dets.append(per_class)
        gts.append(boxes.astype(np.float32))
        labels.append(lab)
        ignores.append(ign)
    return dets, gts, labels, ignores


def _mmdet_mean_ap():
    """MMDetection's mean_ap module without importing mmdet.evaluation (which needs mmcv's
    compiled ops): its folder is loaded as a stand-alone package."""
    import importlib
    import types

    from common import peer_site_packages

    site = peer_site_packages()
    if import_peer("mmengine") is None or site is None:
        return None
    folder = Path(site) / "mmdet" / "evaluation" / "functional"
    pkg = types.ModuleType("_mmdet_functional")
    pkg.__path__ = [str(folder)]
    sys.modules["_mmdet_functional"] = pkg
    try:
        return importlib.import_module("_mmdet_functional.mean_ap")
    except Exception as exc:  # noqa: BLE001 - a missing peer piece means no comparison
        print(f"[bench] MMDetection's mean_ap not importable ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def bench_voc(quick: bool) -> tuple[list[dict], list[str]]:
    from det.core.evaluation.voc import voc_map

    rows, notes = [], []
    mmdet_fn = _mmdet_mean_ap()
    for images, classes in ([(200, 20)] if quick else [(500, 20), (2000, 20)]):
        dets, gts, labels, ignores = _voc_case(images, classes)
        det_ms = median_ms(lambda: voc_map(dets, gts, labels, ignores, classes, 0.5, "area"), repeat=3)
        ours, _ = voc_map(dets, gts, labels, ignores, classes, 0.5, "area")
        row = {"case": f"voc_map area {images} img x {classes} cls", "det_ms": det_ms}
        if mmdet_fn is not None:
            anns = [{"bboxes": g[~i], "labels": lab[~i], "bboxes_ignore": g[i], "labels_ignore": lab[i]}
                    for g, lab, i in zip(gts, labels, ignores)]
            import contextlib
            import io

            def peer():
                with contextlib.redirect_stdout(io.StringIO()):
                    return mmdet_fn.eval_map(dets, anns, iou_thr=0.5, nproc=1, eval_mode="area", logger="silent")

            peer_ms = median_ms(peer, repeat=3)
            theirs = peer()[0]
            row.update(peer="mmdet eval_map (nproc=1)", peer_ms=peer_ms, ratio=peer_ms / det_ms)
            notes.append(f"{images} images: det mAP {ours:.6f}, MMDetection {theirs:.6f}")
        rows.append(row)
    return rows, notes


def bench_trainer(quick: bool) -> tuple[list[dict], list[str]]:
    """Seconds per iteration: det's Trainer (logging, schedule, EMA off) vs a bare loop."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core" / "engine"))
    from engine_tiny import SquaresDataset, TinyDet, collate

    from det.core.engine import Trainer, seed_everything

    n, bs = (64, 8) if quick else (256, 8)
    ds = SquaresDataset(n, size=32)
    iters = n // bs
    cfg = {"max_epochs": 1, "log_interval": 10, "optimizer": {"type": "SGD", "lr": 0.01, "momentum": 0.9}}

    def det_run():
        seed_everything(0)
        with tempfile.TemporaryDirectory() as tmp:
            t = Trainer(TinyDet(), cfg, tmp, train_dataset=ds, collate_fn=collate, batch_size=bs)
            t.fit()

    def bare_run():
        seed_everything(0)
        model = TinyDet()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, collate_fn=collate)
        for inputs, samples in loader:
            losses = model.loss(inputs, samples)
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()

    import logging

    logging.getLogger("det").setLevel(logging.WARNING)
    det_ms = median_ms(det_run, repeat=3) / iters
    bare_ms = median_ms(bare_run, repeat=3) / iters
    return ([{"case": f"train iteration (tiny model, batch {bs}, 32 px)", "det_ms": det_ms, "peer": "bare PyTorch loop",
              "peer_ms": bare_ms, "ratio": bare_ms / det_ms}],
            ["Trainer ms/iteration include its checkpoint at the end of the epoch, amortised"])


def main() -> None:
    args = arg_parser(__doc__).parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.time()
    rows, notes = bench_voc(args.quick)
    r2, n2 = bench_trainer(args.quick)
    emit("engine: VOC mAP and trainer overhead", rows + r2, notes + n2 + [f"{time.time() - t0:.0f} s in all"], args.json)


if __name__ == "__main__":
    main()
