"""One `run(feeds) -> outputs` interface over ONNX Runtime, OpenVINO and TorchScript files."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from det.core.deploy.extras import require
from det.core.errors import DetError

RUNTIME_OF_FORMAT = {"onnx": "onnxruntime", "openvino": "openvino", "torchscript": "torch"}


class Session:
    """An exported model loaded in its runtime; `run` takes and returns numpy arrays."""

    def __init__(self, path: str | Path, runtime: str, threads: int | None = None) -> None:
        self.path, self.runtime = Path(path), runtime
        if not self.path.is_file():
            raise DetError(f"{self.path}: exported model not found")
        threads = threads or int(os.environ.get("DET_THREADS", "0")) or None
        self._run = {"onnxruntime": _onnxruntime, "openvino": _openvino, "torch": _torchscript}[runtime](self.path, threads)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._run(feeds)


def _onnxruntime(path: Path, threads: int | None):
    ort = require("onnxruntime", "--backend onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    return lambda feeds: sess.run(None, {k: v for k, v in feeds.items() if k in names})


def _openvino(path: Path, threads: int | None):
    ov = require("openvino", "--backend openvino")
    config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
    # fp32 everywhere: OpenVINO's CPU plugin would otherwise pick bf16 on CPUs that have it
    config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    names = {n for i in compiled.inputs for n in i.get_names()}
    request = compiled.create_infer_request()

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        res = request.infer({k: v for k, v in feeds.items() if k in names})
        return [np.asarray(res[o]) for o in compiled.outputs]
    return run


def _torchscript(path: Path, threads: int | None):
    import torch

    import det.ops  # noqa: F401 - registers torch.ops.det.* that traced NMS calls

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still supported
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        args = [torch.from_numpy(feeds[k]) for k in ("images", "image_sizes") if k in feeds]
        with torch.inference_mode():
            out = module(*args)
        return [t.numpy() for t in (out if isinstance(out, (tuple, list)) else (out,))]
    return run
