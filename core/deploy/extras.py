"""Optional dependencies: a missing one is a one-line hint naming the extra that installs it."""
from __future__ import annotations

import importlib
from types import ModuleType

from det.core.errors import DetError

EXTRA_OF = {"onnx": "deploy", "onnxruntime": "deploy", "openvino": "deploy", "fastapi": "serve",
            "uvicorn": "serve", "multipart": "serve"}


def require(module: str, what: str) -> ModuleType:
    """Import `module` or fail with `pip install 'det[extra]'` in the message."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRA_OF.get(module.split(".")[0], "deploy")
        raise DetError(f"{what}: needs the '{module}' package; install it with pip install 'det[{extra}]'") from None
