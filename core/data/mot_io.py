"""MOTChallenge files: seqinfo.ini, gt/gt.txt, det/det.txt and tracker results.

Rows are kept as float64 arrays with 10 columns:
`frame, id, x, y, w, h, conf, class, visibility, z` (gt: conf is the 0/1 "consider" flag;
det: id = -1 and conf is the detector score; results: conf is the track score).
Missing trailing columns are filled with MOTChallenge's defaults (gt: 1, 1, 1; others: -1).
Any malformed line raises DataError naming the file and line.
"""
from __future__ import annotations

import configparser
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from det.core.errors import DataError
from det.core.fileio import atomic_write_text, ensure_new

NCOLS = 10
KINDS = ("gt", "det", "result")
# MOT17/MOT20 class ids (column 8 of gt.txt).
MOT_CLASSES = {
    "pedestrian": 1, "person_on_vehicle": 2, "car": 3, "bicycle": 4, "motorbike": 5, "non_mot_vehicle": 6,
    "static_person": 7, "distractor": 8, "occluder": 9, "occluder_on_ground": 10, "occluder_full": 11,
    "reflection": 12, "crowd": 13,
}
DISTRACTOR_CLASSES = {
    "MOT17": (2, 7, 8, 12),  # person_on_vehicle, static_person, distractor, reflection
    "MOT20": (2, 6, 7, 8, 12),  # + non_mot_vehicle
}


def _defaults(kind: str) -> np.ndarray:
    return np.array([0, -1, 0, 0, 0, 0, 1, 1, 1, -1] if kind == "gt" else [0, -1, 0, 0, 0, 0, -1, -1, -1, -1], dtype=np.float64)


def _check_rows(rows: np.ndarray, kind: str) -> np.ndarray:
    """Indices of rows that break the format (frame >= 1 integer, finite box, w, h >= 0, integer id)."""
    bad = ~np.isfinite(rows[:, :6]).all(axis=1)
    bad |= (rows[:, 0] < 1) | (rows[:, 0] != np.round(rows[:, 0]))
    bad |= (rows[:, 4] < 0) | (rows[:, 5] < 0)
    bad |= rows[:, 1] != np.round(rows[:, 1])
    if kind != "det":  # det.txt uses id -1; gt and results need real ids
        bad |= rows[:, 1] < 0
    return np.flatnonzero(bad)


def _problem(row: np.ndarray, kind: str) -> str:
    if not np.isfinite(row[:6]).all():
        return "non-finite value"
    if row[0] < 1 or row[0] != round(row[0]):
        return f"frame must be an integer >= 1, got {row[0]:g}"
    if row[4] < 0 or row[5] < 0:
        return f"negative width/height ({row[4]:g}, {row[5]:g})"
    if row[1] != round(row[1]):
        return f"id must be an integer, got {row[1]:g}"
    return f"{'gt' if kind == 'gt' else 'track'} id must be >= 0, got {row[1]:g}"


def read_mot_txt(path: str | Path, kind: str = "result") -> np.ndarray:
    """Parse a MOTChallenge text file into an (N, 10) float64 array (see module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text file ({exc.reason})") from None
    default = _defaults(kind)
    rows: list[np.ndarray] = []
    lines: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = [p for p in line.replace(",", " ").split()]
        if len(parts) < 6:
            raise DataError(f"{path}:{lineno}: expected at least 6 comma-separated values "
                            f"(frame,id,x,y,w,h,...), got {len(parts)}")
        if len(parts) > NCOLS:
            raise DataError(f"{path}:{lineno}: expected at most {NCOLS} values, got {len(parts)}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not _is_float(p))
            raise DataError(f"{path}:{lineno}: '{bad}' is not a number") from None
        row = default.copy()
        row[: len(values)] = values
        rows.append(row)
        lines.append(lineno)
    if not rows:
        return np.empty((0, NCOLS))
    arr = np.stack(rows)
    bad = _check_rows(arr, kind)
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{path}:{lines[i]}: {_problem(arr[i], kind)}")
    return arr


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_mot_rows(rows: np.ndarray) -> str:
    """(K, >=7) rows frame, id, x, y, w, h, score -> MOTChallenge result text."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        return ""
    order = np.lexsort((rows[:, 1], rows[:, 0]))
    out = []
    for r in rows[order]:
        out.append(f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},{r[6]:.4f},-1,-1,-1\n")
    return "".join(out)


def write_mot_txt(path: str | Path, rows: np.ndarray, force: bool = False) -> Path:
    """Write tracker results (frame, id, x, y, w, h, score) atomically; refuses to overwrite
    an existing file unless `force`."""
    ensure_new(path, force)
    return atomic_write_text(path, format_mot_rows(np.asarray(rows)))


def read_seqinfo(seq_dir: str | Path) -> dict:
    """seqinfo.ini of a sequence -> {name, seqLength, imWidth, imHeight, frameRate, imDir, imExt}.

    Without seqinfo.ini the length is the number of frames in img1/ (or the last gt frame)."""
    seq_dir = Path(seq_dir)
    ini = seq_dir / "seqinfo.ini"
    if not ini.is_file():
        frames = sorted((seq_dir / "img1").glob("*.jpg")) if (seq_dir / "img1").is_dir() else []
        length = len(frames)
        if not length and (seq_dir / "gt" / "gt.txt").is_file():
            gt = read_mot_txt(seq_dir / "gt" / "gt.txt", "gt")
            length = int(gt[:, 0].max()) if len(gt) else 0
        return {"name": seq_dir.name, "seqLength": length, "imDir": "img1", "imExt": ".jpg",
                "frameRate": 30, "imWidth": 0, "imHeight": 0}
    parser = configparser.ConfigParser()
    try:
        parser.read(ini, encoding="utf-8")
    except configparser.Error as exc:
        raise DataError(f"{ini}: not a valid ini file ({str(exc).splitlines()[0]})") from None
    if "Sequence" not in parser:
        raise DataError(f"{ini}: missing [Sequence] section")
    sec = parser["Sequence"]
    info: dict = {"name": sec.get("name", seq_dir.name), "imDir": sec.get("imDir", "img1"), "imExt": sec.get("imExt", ".jpg")}
    for key, default in (("seqLength", None), ("frameRate", 30), ("imWidth", 0), ("imHeight", 0)):
        raw = sec.get(key)
        if raw is None:
            if default is None:
                raise DataError(f"{ini}: missing key '{key}'")
            info[key] = default
            continue
        try:
            info[key] = int(raw)
        except ValueError:
            raise DataError(f"{ini}: {key} must be an integer, got '{raw}'") from None
    return info


def write_seqinfo(seq_dir: str | Path, name: str, length: int, width: int, height: int, fps: int = 30,
                  im_ext: str = ".jpg") -> Path:
    text = (f"[Sequence]\nname={name}\nimDir=img1\nframeRate={fps}\nseqLength={length}\n"
            f"imWidth={width}\nimHeight={height}\nimExt={im_ext}\n")
    return atomic_write_text(Path(seq_dir) / "seqinfo.ini", text)


def find_sequences(root: str | Path) -> list[Path]:
    """Sequence folders under `root` (folders holding seqinfo.ini, gt/ or det/); `root` itself
    when it is a sequence."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")

    def is_seq(p: Path) -> bool:
        return (p / "seqinfo.ini").is_file() or (p / "gt" / "gt.txt").is_file() or (p / "det" / "det.txt").is_file()

    if is_seq(root):
        return [root]
    seqs = sorted(p for p in root.iterdir() if p.is_dir() and is_seq(p))
    if not seqs:
        raise DataError(f"{root}: no MOTChallenge sequences (folders with seqinfo.ini, gt/gt.txt or det/det.txt)")
    return seqs


def detections_by_frame(rows: np.ndarray, num_frames: int | None = None,
                        min_score: float = -np.inf) -> dict[int, np.ndarray]:
    """det.txt rows -> {frame: (N, 5) x1, y1, x2, y2, score} for frames 1..num_frames."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, NCOLS)
    rows = rows[rows[:, 6] >= min_score]
    last = int(rows[:, 0].max()) if len(rows) else 0
    n = max(last, num_frames or 0)
    out = {f: np.empty((0, 5)) for f in range(1, n + 1)}
    if len(rows):
        frames = rows[:, 0].astype(np.int64)
        order = np.argsort(frames, kind="stable")
        rows, frames = rows[order], frames[order]
        boxes = np.column_stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5], rows[:, 6]])
        splits = np.flatnonzero(np.diff(frames)) + 1
        for chunk, fr in zip(np.split(boxes, splits), np.split(frames, splits)):
            out[int(fr[0])] = chunk
    return out


def detection_rows(per_frame: dict[int, np.ndarray]) -> np.ndarray:
    """{frame: (N, 5) x1, y1, x2, y2, score} -> det.txt rows (id -1), frames in order: the inverse
    of `detections_by_frame`."""
    blocks = []
    for f in sorted(per_frame):
        d = np.asarray(per_frame[f], np.float64).reshape(-1, 5)
        block = np.full((len(d), NCOLS), -1.0)
        block[:, 0] = f
        block[:, 2:4] = d[:, :2]
        block[:, 4:6] = d[:, 2:4] - d[:, :2]
        block[:, 6] = d[:, 4]
        blocks.append(block)
    return np.concatenate(blocks) if blocks else np.empty((0, NCOLS))


def filter_gt(rows: np.ndarray, classes: Iterable[int] = (1,), min_visibility: float = 0.0,
              keep_ignored: bool = False) -> np.ndarray:
    """MOT17 training filter: keep gt boxes of `classes` with visibility >= `min_visibility`
    and (unless `keep_ignored`) the consider flag set (column 7 != 0)."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, NCOLS)
    keep = np.isin(rows[:, 7].astype(np.int64), list(classes)) & (rows[:, 8] >= min_visibility)
    if not keep_ignored:
        keep &= rows[:, 6] != 0
    return rows[keep]
