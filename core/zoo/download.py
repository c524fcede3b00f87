"""Files over HTTP(S) into the cache: resumable (`FILE.part` + a Range request), checked against the
hash prefix in the file name, renamed to the final name only when complete and checked, so nothing
partial ever sits under the final name."""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from det.core.errors import DetError
from det.core.log import get_logger, make_download_progress

CHUNK = 1 << 16
# MMDetection's (and torchvision's) published files end in -<first hex digits of their sha256>.<ext>
HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


def hash_prefix_of(url_or_name: str) -> str | None:
    """'..._20220902_112414-78e30dcc.pth' -> '78e30dcc' (None when the name carries no hash)."""
    match = HASH_IN_NAME.search(url_or_name.rsplit("/", 1)[-1])
    return match.group(1) if match else None


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DownloadInterrupted(DetError):
    """The transfer stopped early; the `.part` file is kept for the next attempt to resume."""


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": "det", **({"Range": f"bytes={start}-"} if start else {})}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the part file already holds the whole file
            return None
        raise DetError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadInterrupted(f"{url}: cannot connect ({reason})") from None


def _transfer(url: str, part: Path, timeout: float) -> None:
    """Append the rest of `url` to `part` (from scratch when the server ignores the Range)."""
    start = part.stat().st_size if part.exists() else 0
    response = _open(url, start, timeout)
    if response is None:
        return
    with response:
        resumed = response.status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) + (start if resumed else 0)) if length else None
        done = start if resumed else 0
        with open(part, "ab" if resumed else "wb") as fh, make_download_progress() as progress:
            task = progress.add_task(f"download {part.name[:-5]}", total=total, completed=done)
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    fh.write(block)
                    done += len(block)
                    progress.update(task, completed=done)
            except (OSError, http.client.HTTPException) as exc:  # a dropped connection
                raise DownloadInterrupted(f"{url}: transfer interrupted at {done} bytes ({exc})") from None
    if total is not None and done < total:
        raise DownloadInterrupted(f"{url}: transfer interrupted at {done} of {total} bytes")


def download(url: str, dest: str | Path, hash_prefix: str | None = None, retries: int = 3,
             timeout: float = 60.0) -> Path:
    """`url` -> `dest`, resuming `dest.part` across attempts and runs; a hash mismatch deletes
    the download and raises (exit 2). Local paths and file:// URLs are copied."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if "://" not in url or url.startswith("file://"):
        _copy_local(url, part)
    else:
        for attempt in range(retries):
            try:
                _transfer(url, part, timeout)
                break
            except DownloadInterrupted as exc:
                if attempt + 1 == retries:
                    raise DetError(f"{exc} after {retries} attempts; rerun to resume ({part} is kept)") from None
                get_logger().warning(f"{exc}; resuming")
    _check_hash(url, part, hash_prefix)
    os.replace(part, dest)
    return dest


def _copy_local(url: str, part: Path) -> None:
    src = Path(url[len("file://"):] if url.startswith("file://") else url)
    if not src.is_file():
        raise DetError(f"{src}: file not found")
    shutil.copyfile(src, part)


def _check_hash(url: str, part: Path, hash_prefix: str | None) -> None:
    if not hash_prefix:
        return
    digest = sha256_of(part)
    if not digest.startswith(hash_prefix.lower()):
        part.unlink(missing_ok=True)
        raise DetError(f"{url}: sha256 {digest[:len(hash_prefix)]}... does not match the expected {hash_prefix} "
                       "(download deleted)")
