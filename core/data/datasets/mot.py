"""`MOTChallengeDataset`: the frames of MOTChallenge sequences as a detection dataset.

`root` holds sequence folders (`seqinfo.ini`, `img1/000001.jpg...`, `gt/gt.txt`), as MOT17's
`train/` or what `det synth mot` writes. Every frame is one record; it also carries `seq`
(the sequence name) and `frame_id` (1-based), so `det test` on a preset with a `tracker`
section can run the detector per frame and the tracker per sequence. Ground truth (optional:
a test split has none) becomes instances: pedestrians (class 1) with the consider flag set and
visibility >= `min_visibility` are label 0; the other boxes (distractor classes, consider flag
0, low visibility) are kept as ignored instances. Boxes are clipped to the image.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from det.core.data.datasets.base import BaseDetDataset
from det.core.errors import DataError

BENCHMARKS = ("MOT17", "MOT20", "MOT15")
SYNTH_HINT = "create synthetic sequences with: det synth mot"


class MOTChallengeDataset(BaseDetDataset):
    """`root`: folder of MOTChallenge sequences (or one sequence); `sequences`: names to keep
    (default all); `benchmark`: MOT17, MOT20 or MOT15 (the distractor classes `det test`'s
    evaluation removes); `min_visibility`: visibility below which a pedestrian is ignored."""

    def __init__(self, root: str, sequences: Sequence[str] | None = None, benchmark: str = "MOT17",
                 min_visibility: float = 0.0, classes: Sequence[str] | None = None,
                 palette: Sequence[Sequence[int]] | None = None, pipeline: list | None = None,
                 filter_empty_gt: bool = True, min_size: int = 0, test_mode: bool = False,
                 max_refetch: int = 100) -> None:
        if benchmark not in BENCHMARKS:
            raise ValueError(f"benchmark must be one of {', '.join(BENCHMARKS)}, got '{benchmark}'")
        if classes is not None and len(classes) != 1:
            raise ValueError(f"classes: MOTChallenge boxes are one class (pedestrian), got {list(classes)}")
        self.root = Path(str(root))
        self.wanted = list(sequences) if sequences is not None else None
        self.benchmark = benchmark
        self.min_visibility = float(min_visibility)
        self.sequence_info: dict[str, dict] = {}
        super().__init__(pipeline=pipeline, classes=classes, palette=palette, filter_empty_gt=filter_empty_gt,
                         min_size=min_size, test_mode=test_mode, max_refetch=max_refetch)

    # -- sequences ---------------------------------------------------------------------------
    def sequence_dirs(self) -> list[Path]:
        from det.core.data.mot_io import find_sequences

        if not self.root.is_dir():
            raise DataError(f"{self.root}: MOTChallenge data folder not found ({SYNTH_HINT} {self.root})")
        seqs = find_sequences(self.root)
        if self.wanted is not None:
            by_name = {s.name: s for s in seqs}
            missing = [n for n in self.wanted if n not in by_name]
            if missing:
                raise DataError(f"{self.root / missing[0]}: sequence not found (have {', '.join(by_name) or 'none'})")
            seqs = [by_name[n] for n in self.wanted]
        return seqs

    def sequences(self) -> dict[str, list[int]]:
        """Sequence name -> indices of its frames in this dataset, in frame order."""
        out: dict[str, list[int]] = {}
        for i, info in enumerate(self.data_list):
            out.setdefault(info["seq"], []).append(i)
        return out

    # -- records -------------------------------------------------------------------------------
    def load_data_list(self) -> list[dict]:
        import cv2

        from det.core.data.mot_io import read_mot_txt, read_seqinfo

        self.classes = tuple(self._requested_classes or ("pedestrian",))
        data: list[dict] = []
        for seq in self.sequence_dirs():
            info = read_seqinfo(seq)
            n = int(info["seqLength"])
            img_dir = seq / info.get("imDir", "img1")
            ext = info.get("imExt", ".jpg")
            frames = [img_dir / f"{f:06d}{ext}" for f in range(1, n + 1)]
            if n == 0:
                raise DataError(f"{seq}: sequence has no frames (seqinfo.ini seqLength, or img1/ empty)")
            missing = [p for p in frames if not p.is_file()]
            if missing:
                raise DataError(f"{missing[0]}: frame not found ({len(missing)} of {n} frames of {seq.name} missing)")
            width, height = int(info.get("imWidth") or 0), int(info.get("imHeight") or 0)
            if not (width and height):
                img = cv2.imread(str(frames[0]), cv2.IMREAD_COLOR)
                if img is None:
                    raise DataError(f"{frames[0]}: cannot read image")
                height, width = img.shape[:2]
            gt_path = seq / "gt" / "gt.txt"
            per_frame = self._instances(read_mot_txt(gt_path, "gt"), width, height) if gt_path.is_file() else {}
            self.sequence_info[seq.name] = {"dir": str(seq), "length": n, "width": width, "height": height,
                                            "has_gt": gt_path.is_file()}
            for f, path in enumerate(frames, start=1):
                data.append({"img_path": str(path), "file_name": f"{seq.name}/{path.name}", "img_id": len(data),
                             "width": width, "height": height, "seq": seq.name, "frame_id": f,
                             "instances": per_frame.get(f, [])})
        return data

    def _instances(self, gt: np.ndarray, width: int, height: int) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        for row in gt:
            x1, y1 = max(float(row[2]), 0.0), max(float(row[3]), 0.0)
            x2, y2 = min(float(row[2] + row[4]), float(width)), min(float(row[3] + row[5]), float(height))
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue  # outside the image
            keep = int(row[7]) == 1 and row[6] != 0 and row[8] >= self.min_visibility
            out.setdefault(int(row[0]), []).append({"bbox": [x1, y1, x2, y2], "bbox_label": 0, "ignore_flag": not keep})
        return out

    def __repr__(self) -> str:
        return f"MOTChallengeDataset(root={self.root}, sequences={len(self.sequence_info)}, frames={len(self)})"
