"""Build script: maps the source folders into the `det` namespace and compiles det.ops._C.

`detcli/` -> `det.cli`, `core/` -> `det.core`, `ops/` -> `det.ops`, `presets/` -> `det.presets`.
The C++ ops are compiled with torch.utils.cpp_extension against the torch already installed
(hence `pip install --no-build-isolation`). CUDA kernels are added only when nvcc and a CUDA
build of torch are present, or when DET_WITH_CUDA=1.
"""
from __future__ import annotations

import glob
import os

from setuptools import setup

ROOTS = {"det.cli": "detcli", "det.core": "core", "det.ops": "ops", "det.presets": "presets"}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = [], {}
    for name, folder in ROOTS.items():
        for dirpath, dirnames, _ in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")) and d != "csrc")
            rel = os.path.relpath(dirpath, folder)
            pkg = name if rel == "." else name + "." + rel.replace(os.sep, ".")
            packages.append(pkg)
            package_dir[pkg] = dirpath
    return packages, package_dir


def _extensions():
    sources = sorted(glob.glob("ops/csrc/cpu/*.cpp")) + sorted(glob.glob("ops/csrc/*.cpp"))
    if not sources:
        return [], {}
    from torch.utils import cpp_extension

    with_cuda = os.environ.get("DET_WITH_CUDA") == "1" or (
        cpp_extension.CUDA_HOME is not None and _torch_has_cuda() and os.environ.get("DET_WITH_CUDA") != "0"
    )
    cuda_sources = sorted(glob.glob("ops/csrc/cuda/*.cu")) if with_cuda else []
    cxx = ["-O3", "-std=c++20", "-fopenmp", "-g0"]  # -g0: no debug info (halves compile time and size)
    # The source hash lets det.ops refuse to load an extension built from other sources. It goes
    # into a generated header that only register.cpp includes, so a change recompiles one file.
    include_dirs = [_write_hash_header()]
    if cuda_sources and os.path.isdir(os.path.join(cpp_extension.CUDA_HOME, "include", "cccl")):
        include_dirs.append(os.path.join(cpp_extension.CUDA_HOME, "include", "cccl"))  # nvcc from PyPI wheels
    macros = [("DET_WITH_CUDA", None)] if cuda_sources else []
    if cuda_sources:
        ext = cpp_extension.CUDAExtension(
            "det.ops._C", sources + cuda_sources, define_macros=macros, include_dirs=include_dirs,
            extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "-std=c++20", "--expt-relaxed-constexpr"]},
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = cpp_extension.CppExtension(
            "det.ops._C", sources, define_macros=macros, include_dirs=include_dirs, extra_compile_args={"cxx": cxx},
            extra_link_args=["-fopenmp"],
        )
    return [ext], {"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)}


def _write_hash_header() -> str:
    """build/det_ops_generated/det_ops_source_hash.h with the hash of ops/csrc (rewritten only on change)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_det_source_hash", os.path.join("ops", "_source_hash.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = os.path.abspath(os.path.join("build", "det_ops_generated"))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "det_ops_source_hash.h")
    text = f'#define DET_OPS_SOURCE_HASH "{module.source_hash(os.path.join("ops", "csrc"))}"\n'
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)
    return folder


def _torch_has_cuda() -> bool:
    import torch

    return torch.version.cuda is not None and os.environ.get("DET_WITH_CUDA", "auto") != "0" and _nvcc_ok()


def _nvcc_ok() -> bool:
    # A CUDA torch on a machine without a GPU still compiles kernels if nvcc exists, but that
    # doubles build time for nothing; build them only when asked or when a GPU is visible.
    import torch

    return os.environ.get("DET_WITH_CUDA") == "1" or torch.cuda.is_available()


packages, package_dir = _packages()
ext_modules, cmdclass = _extensions()
setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"det.presets": ["**/*.yaml"]},
    include_package_data=False,
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
