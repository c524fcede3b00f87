"""Hash of the C++ sources under ops/csrc, baked into det.ops._C at build time.

setup.py loads this file by path (det is not importable while it is being built), and
det.ops._ext recomputes the hash at import to detect a stale extension.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

SUFFIXES = (".cpp", ".h", ".hpp", ".cu", ".cuh")


def source_hash(csrc: str | Path) -> str:
    """16 hex digits over the relative paths and bytes of every source file under `csrc`."""
    root = Path(csrc)
    digest = hashlib.sha1()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]
