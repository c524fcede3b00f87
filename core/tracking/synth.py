"""Synthetic MOTChallenge sequences: moving shapes with ground truth and noisy public detections.

Each sequence has objects ("pedestrians", class 1) that enter from the image borders, move
with linear or turning (constant angular rate) motion at varied speeds, grow or shrink slowly,
cross each other at different depths (occlusions) and leave; plus a static distractor
(class 7, static_person, consider flag 0) that MOT17 evaluation ignores. Visibility is measured
by rasterising the shapes in depth order. det.txt misses occluded objects more often, jitters
boxes in proportion to their size, scores them by visibility and adds false positives with
mostly low scores. Everything is drawn from one numpy Generator seeded with (seed, sequence).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from det.core.errors import DetError
from det.core.fileio import atomic_write_text
from det.core.log import track
from det.core.data.mot_io import write_seqinfo


@dataclass
class _Obj:
    oid: int
    cls: int  # 1 pedestrian, 7 static_person
    shape: int  # 0 rectangle, 1 ellipse
    color: tuple[int, int, int]
    depth: float  # larger is nearer (drawn on top)
    cx: float
    cy: float
    w: float
    h: float
    speed: float
    heading: float
    turn: float  # radians per frame (0 = linear motion)
    growth: float  # relative size change per frame
    start: int
    alive: bool = True

    def box(self) -> tuple[float, float, float, float]:
        return self.cx - self.w / 2, self.cy - self.h / 2, self.w, self.h

    def step(self) -> None:
        self.heading += self.turn
        self.cx += self.speed * math.cos(self.heading)
        self.cy += self.speed * math.sin(self.heading)
        scale = 1.0 + self.growth
        self.w *= scale
        self.h *= scale


class _SequenceMaker:
    def __init__(self, rng: np.random.Generator, width: int, height: int) -> None:
        self.rng, self.W, self.H = rng, width, height
        self.next_id = 1
        self.objs: list[_Obj] = []

    def _new(self, frame: int, entering: bool) -> _Obj:
        r = self.rng
        h = float(r.uniform(0.12, 0.3) * self.H)
        w = h * float(r.uniform(0.38, 0.62))
        speed = float(r.uniform(1.0, 4.5) * self.H / 480)
        turn = 0.0 if r.random() < 0.55 else float(r.choice([-1, 1]) * r.uniform(0.004, 0.02))
        if entering:  # start just outside a border, heading inwards
            side = int(r.integers(4))
            if side in (0, 1):
                cx = -w / 2 + 2 if side == 0 else self.W + w / 2 - 2
                cy = float(r.uniform(0.2, 0.8) * self.H)
                heading = (0.0 if side == 0 else math.pi) + float(r.uniform(-0.5, 0.5))
            else:
                cy = -h / 2 + 2 if side == 2 else self.H + h / 2 - 2
                cx = float(r.uniform(0.2, 0.8) * self.W)
                heading = (math.pi / 2 if side == 2 else -math.pi / 2) + float(r.uniform(-0.5, 0.5))
        else:
            cx = float(r.uniform(0.1, 0.9) * self.W)
            cy = float(r.uniform(0.15, 0.85) * self.H)
            heading = float(r.uniform(-math.pi, math.pi))
        color = tuple(int(c) for c in r.integers(30, 230, size=3))
        obj = _Obj(self.next_id, 1, int(r.integers(2)), color, float(r.random()), cx, cy, w, h, speed, heading,
                   turn, float(r.uniform(-0.0015, 0.0015)), frame)
        self.next_id += 1
        return obj

    def _distractor(self, frame: int) -> _Obj:
        r = self.rng
        h = float(r.uniform(0.15, 0.25) * self.H)
        obj = _Obj(self.next_id, 7, 0, (200, 200, 200), -1.0, float(r.uniform(0.15, 0.85) * self.W),
                   float(r.uniform(0.3, 0.7) * self.H), h * 0.45, h, 0.0, 0.0, 0.0, 0.0, frame)
        self.next_id += 1
        return obj

    def visible(self, o: _Obj) -> bool:
        x, y, w, h = o.box()
        return x < self.W and y < self.H and x + w > 0 and y + h > 0

    def frame_objects(self, frame: int) -> list[_Obj]:
        r = self.rng
        if frame == 1:
            self.objs = [self._new(1, False) for _ in range(int(r.integers(5, 8)))]
            self.objs.append(self._distractor(1))
        else:
            for o in self.objs:
                o.step()
            active = [o for o in self.objs if o.alive and o.cls == 1]
            if len(active) < 11 and r.random() < 0.06:
                self.objs.append(self._new(frame, True))
        for o in self.objs:
            if o.alive and o.cls == 1 and frame > o.start and not self.visible(o):
                o.alive = False  # left the image: never comes back
        self.objs = [o for o in self.objs if o.alive]
        return [o for o in self.objs if self.visible(o)]


def _draw(canvas: np.ndarray, o: _Obj, color) -> None:
    x, y, w, h = o.box()
    p1 = (int(round(x)), int(round(y)))
    p2 = (int(round(x + w)) - 1, int(round(y + h)) - 1)
    if o.shape == 0:
        cv2.rectangle(canvas, p1, p2, color, thickness=-1)
    else:
        centre = (int(round(o.cx)), int(round(o.cy)))
        axes = (max(1, int(round(w / 2))), max(1, int(round(h / 2))))
        cv2.ellipse(canvas, centre, axes, 0, 0, 360, color, thickness=-1)


def _area(o: _Obj) -> float:
    return o.w * o.h * (1.0 if o.shape == 0 else math.pi / 4)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = rng.integers(60, 200, size=3)
    ys, xs = np.mgrid[0:h, 0:w]
    grad = (xs / max(w, 1) * 40 + ys / max(h, 1) * 30)[..., None]
    noise = rng.normal(0, 6, size=(h // 8 + 1, w // 8 + 1, 3))
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(base[None, None, :] + grad + noise, 0, 255).astype(np.uint8)


def make_sequence(out_dir: Path, name: str, rng: np.random.Generator, frames: int, width: int, height: int,
                  write_images: bool = True, progress: bool = True) -> Path:
    """Write one sequence folder (seqinfo.ini, img1/, gt/gt.txt, det/det.txt)."""
    seq = out_dir / name
    (seq / "img1" if write_images else seq).mkdir(parents=True, exist_ok=True)
    maker = _SequenceMaker(rng, width, height)
    bg = _background(rng, width, height)
    gt_lines: list[str] = []
    det_lines: list[str] = []
    steps = range(1, frames + 1)
    for f in (track(steps, f"synth {name}") if progress else steps):
        objs = sorted(maker.frame_objects(f), key=lambda o: o.depth)
        idmap = np.zeros((height, width), dtype=np.uint8)
        img = bg.copy() if write_images else None
        for k, o in enumerate(objs, start=1):
            _draw(idmap, o, k)
            if img is not None:
                _draw(img, o, o.color)
        counts = np.bincount(idmap.ravel(), minlength=len(objs) + 1)
        for k, o in enumerate(objs, start=1):
            vis = float(min(1.0, counts[k] / max(_area(o), 1.0)))
            x, y, w, h = o.box()
            flag = 1 if o.cls == 1 else 0
            gt_lines.append(f"{f},{o.oid},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{flag},{o.cls},{vis:.4f}\n")
            det_lines.extend(_detect(rng, f, o, vis))
        det_lines.extend(_false_positives(rng, f, width, height))
        if img is not None:
            cv2.imwrite(str(seq / "img1" / f"{f:06d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    write_seqinfo(seq, name, frames, width, height)
    atomic_write_text(seq / "gt" / "gt.txt", "".join(gt_lines))
    atomic_write_text(seq / "det" / "det.txt", "".join(det_lines))
    return seq


def _detect(rng: np.random.Generator, f: int, o: _Obj, vis: float) -> list[str]:
    """A noisy detection of `o` (or none): misses grow with occlusion, scores follow visibility."""
    p_detect = (0.45 + 0.53 * vis) if o.cls == 1 else 0.6
    if vis < 0.05 or rng.random() > p_detect:
        return []
    x, y, w, h = o.box()
    jx, jy = rng.normal(0, 0.035 * w), rng.normal(0, 0.025 * h)
    sw, sh = math.exp(rng.normal(0, 0.04)), math.exp(rng.normal(0, 0.03))
    nw, nh = w * sw, h * sh
    nx, ny = x + jx + (w - nw) / 2, y + jy + (h - nh) / 2
    score = float(np.clip(rng.normal(0.55 + 0.42 * vis, 0.07), 0.05, 0.99))
    return [f"{f},-1,{nx:.2f},{ny:.2f},{nw:.2f},{nh:.2f},{score:.4f},-1,-1,-1\n"]


def _false_positives(rng: np.random.Generator, f: int, width: int, height: int) -> list[str]:
    lines = []
    for _ in range(int(rng.poisson(0.7))):
        h = float(rng.uniform(0.08, 0.3) * height)
        w = h * float(rng.uniform(0.35, 0.7))
        x = float(rng.uniform(0, width - w))
        y = float(rng.uniform(0, height - h))
        score = float(np.clip(rng.beta(2.0, 5.0) if rng.random() < 0.9 else rng.uniform(0.5, 0.8), 0.01, 0.99))
        lines.append(f"{f},-1,{x:.2f},{y:.2f},{w:.2f},{h:.2f},{score:.4f},-1,-1,-1\n")
    return lines


def generate_mot(out: str | Path, seqs: int = 3, frames: int = 300, seed: int = 0, width: int = 640,
                 height: int = 480, write_images: bool = True, force: bool = False,
                 progress: bool = True) -> list[Path]:
    """Write `seqs` sequences SYNTH-01.. under `out`; deterministic for a seed."""
    out = Path(out)
    if seqs < 1 or frames < 1:
        raise DetError("--seqs and --frames must be >= 1")
    if width < 64 or height < 64:
        raise DetError("--width and --height must be >= 64")
    if out.exists() and any(out.iterdir()) and not force:
        raise DetError(f"{out}: folder exists and is not empty (use --force to write into it)")
    paths = []
    for i in range(seqs):
        rng = np.random.default_rng([seed, i])
        paths.append(make_sequence(out, f"SYNTH-{i + 1:02d}", rng, frames, width, height, write_images, progress))
    return paths
