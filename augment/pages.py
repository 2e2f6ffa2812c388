"""Page builder: synthetic photos of handwritten pages made of real MNIST digits, with tight boxes.

Each page is paper of some tone and texture (plain, ruled, grid or a printed form) with numbers of 1 to 8 digits
written along lines, scattered single digits, printed-like text, pen strokes and smudges, then photographed
(augment/photo.py: slight tilt and perspective, light, blur, noise, JPEG). About 3% of pages hold no digit.
A digit's box is the box of its own ink pixels (coverage >= INK_LEVEL) after scaling and slanting, not of its
28 x 28 cell; nothing it draws lies outside its box.

Train and val pages use disjoint parts of the MNIST training digits, test pages the MNIST test digits
(digitdet/mnist.py). The same seed gives the same files, whatever the number of workers.

Output (ultralytics layout, built in a temporary folder and renamed into place):
    OUT/images/{train,val,test}/000000.jpg   the pages
    OUT/labels/{split}/000000.txt            YOLO boxes, classes 0-9
    OUT/numbers/{split}/000000.json          the numbers in reading order: digits, box, digit boxes (pixels)
    OUT/data.yaml

Usage:
    python -m augment.pages --mnist ../shared/data/mnist --out data/pages
    python -m augment.pages --mnist DIR --out data/pages --train 8000 --val 1000 --test 1000 --size 640 --workers 2
    python -m augment.pages --mnist DIR --out /tmp/look --train 16 --val 0 --test 0 --preview look.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from augment import photo
from digitdet import mnist
from digitdet.atomic import build_into, refuse_overlap
from digitdet.images import read_image
from digitdet.labels import (DIGITS, SPLITS, DatasetError, Label, label_path, numbers_path, read_labels,
                             write_data_yaml, yolo_line)
from digitdet.reading import group_lines

COUNTS = {"train": 8000, "val": 1000, "test": 1000}
INK_LEVEL = 0.5  # a pixel is a digit's ink where its stroke coverage reaches this; boxes are the box of the ink
BLANK_PAGES = 0.03
MARGIN = 0.07  # of the page side kept free of writing, so tilt and perspective keep every digit in the photo
HEIGHTS = (12, 120)  # digit heights in pixels on a 640 page; scaled with the page size
MAX_DIGITS = 160
CHUNK = 16  # pages per worker task
MIN_PAGES_PER_WORKER = 50  # starting a worker process (about 1 s: OpenCV, albumentations) costs about this
LETTERS = "abcdefghijklmnopqrstuvwxyz"
PAPERS = np.array([[0.97, 0.97, 0.96], [0.98, 0.95, 0.86], [0.88, 0.88, 0.86], [0.94, 0.96, 0.99],
                   [0.99, 0.96, 0.72]], np.float32)  # white, cream, recycled grey, bluish, legal-pad yellow
INKS = np.array([[0.08, 0.08, 0.10], [0.10, 0.16, 0.52], [0.10, 0.10, 0.32], [0.34, 0.34, 0.37],
                 [0.60, 0.10, 0.12]], np.float32)  # black, blue ballpoint, dark blue, pencil, red
INK_ODDS = (0.35, 0.35, 0.12, 0.13, 0.05)
PENCIL = 3
RULE_COLORS = np.array([[0.55, 0.70, 0.90], [0.70, 0.70, 0.72], [0.90, 0.55, 0.55]], np.float32)
PRINT_COLOR = np.array([0.12, 0.12, 0.12], np.float32)
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)
STYLES, STYLE_ODDS = ("plain", "ruled", "grid", "form"), (0.3, 0.3, 0.2, 0.2)
LENGTH_ODDS = (.16, .17, .17, .15, .12, .09, .07, .07)  # of numbers of 1 to 8 digits along the lines


@lru_cache(maxsize=None)
def cumulative(odds: tuple[float, ...]) -> np.ndarray:
    total = np.cumsum(odds)
    return total / total[-1]


def draw(rng: np.random.Generator, odds: tuple[float, ...]) -> int:
    """An index drawn with these odds: what rng.choice(len(odds), p=odds) draws from the same random number, without
    the checks of `odds` that make that call cost about 20 us (a page draws about 30 times)."""
    return int(cumulative(odds).searchsorted(rng.random(), side="right"))


def enclosing(boxes: list) -> tuple:
    """The box (x1, y1, x2, y2) around boxes."""
    x1s, y1s, x2s, y2s = zip(*boxes)
    return min(x1s), min(y1s), max(x2s), max(y2s)


@dataclass
class Digit:
    """A digit written on the page: its coverage patch (0..1, cropped to its ink) with top-left pixel (x, y)."""

    cls: int
    source: str  # MNIST set and index, e.g. "train:51234"
    x: int
    y: int
    coverage: np.ndarray
    darkness: float
    hull: np.ndarray  # (x, y) of the ink pixels on the convex hull of the ink, in the patch

    @property  # cheaper than a cached_property (which takes a lock) for the few times it is read
    def box(self) -> tuple[int, int, int, int]:
        h, w = self.coverage.shape
        return self.x, self.y, self.x + w, self.y + h

    @property
    def ink(self) -> np.ndarray:
        return self.coverage >= INK_LEVEL


@dataclass
class Number:
    digits: list[Digit]
    ink: np.ndarray  # RGB pen colour, 0..1

    @cached_property
    def box(self) -> tuple[int, int, int, int]:
        return enclosing([d.box for d in self.digits])


@dataclass
class Layout:
    """Everything a page shows; `render` turns it into pixels the same way every time. Colours are RGB 0..1."""

    size: int
    paper: np.ndarray
    texture_seed: int
    numbers: list[Number] = field(default_factory=list)
    rules: list[tuple] = field(default_factory=list)  # (x1, y1, x2, y2, colour) ruled or grid lines
    texts: list[tuple] = field(default_factory=list)  # (text, x, baseline y, font, scale, thickness) printed
    strokes: list[tuple] = field(default_factory=list)  # (points, thickness, colour) pen strokes that are no digit
    smudges: list[tuple] = field(default_factory=list)  # (x, y, radius, darkness, stretch, angle) ellipses


class Occupancy:
    """Which parts of the page are written on, in 4-pixel cells."""

    CELL = 4

    def __init__(self, size: int):
        self.grid = np.zeros((size // self.CELL + 1,) * 2, bool)

    def _cells(self, box, pad: float):
        cell = self.CELL
        x1, y1 = max(int((box[0] - pad) // cell), 0), max(int((box[1] - pad) // cell), 0)
        x2, y2 = max(int((box[2] + pad) // cell) + 1, 0), max(int((box[3] + pad) // cell) + 1, 0)
        return slice(y1, y2), slice(x1, x2)

    def free(self, box, pad: float = 0) -> bool:
        return not self.grid[self._cells(box, pad)].any()

    def take(self, box) -> None:
        self.grid[self._cells(box, 0)] = True


@dataclass(frozen=True)
class Pen:
    """How MNIST's grey levels become strokes on a page.

    A lower threshold writes thicker lines, a lower softness sharper edges; thinning (a fraction of the digit's
    height) erodes the thick strokes that MNIST digits get when they are enlarged.
    """

    threshold: float
    softness: float
    thinning: float

    @cached_property
    def coverage(self) -> np.ndarray:
        """Stroke coverage (0..1) for each grey level 0..255."""
        return np.clip((np.arange(256, dtype=np.float32) / 255 - self.threshold) / self.softness + INK_LEVEL, 0, 1)

    @cached_property
    def ink_grey(self) -> int:
        """The lowest grey level whose coverage counts as ink."""
        return int(np.argmax(self.coverage >= INK_LEVEL))


@lru_cache(maxsize=None)
def thinning_kernel(width: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))


def write_digit(image: np.ndarray, height: float, shear: float, angle: float,
                pen: Pen) -> tuple[np.ndarray, np.ndarray] | None:
    """An MNIST digit (white on black) as a coverage patch about `height` pixels tall, cropped to its ink, and the
    (x, y) pixels of its ink's convex hull in the patch; None when no pixel reaches INK_LEVEL.

    `shear` slants it (x shift per unit of height) and `angle` (degrees) turns it.
    """
    patch = enlarge(image, height, shear, angle)
    if (width := int(pen.thinning * height)) >= 2:
        patch = cv2.erode(patch, thinning_kernel(width))
    _, ink = cv2.threshold(patch, pen.ink_grey - 1, 1, cv2.THRESH_BINARY)
    # the outer edges of the ink hold its hull, in a few points; the hull's box is the ink's
    edges, _ = cv2.findContours(ink, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not edges:
        return None
    hull = cv2.convexHull(edges[0] if len(edges) == 1 else np.concatenate(edges)).reshape(-1, 2)
    x, y, w, h = cv2.boundingRect(hull)
    return cv2.LUT(patch[y: y + h, x: x + w], pen.coverage), hull - np.int32([x, y])


def enlarge(image: np.ndarray, height: float, shear: float, angle: float) -> np.ndarray:
    """The grey levels of a digit's ink, scaled to `height`, slanted and turned, with a 2-pixel border."""
    x, y, w, h = cv2.boundingRect(image)
    scale = height / h
    c, s = scale * math.cos(math.radians(angle)), scale * math.sin(math.radians(angle))
    m = (c, shear * c - s, s, shear * s + c)  # scale * rotation * shear, row by row
    (aw, bh), (cw, dh) = (m[0] * w, m[1] * h), (m[2] * w, m[3] * h)  # the corners' x: 0, aw, bh, aw + bh
    left, top = math.floor(min(aw, 0) + min(bh, 0)) - 2, math.floor(min(cw, 0) + min(dh, 0)) - 2
    size = (math.ceil(max(aw, 0) + max(bh, 0)) + 2 - left, math.ceil(max(cw, 0) + max(dh, 0)) + 2 - top)
    # Large digits are first enlarged smoothly (cubic, as linear shows facets), by a whole factor: OpenCV resizes
    # about ten times faster than it warps with cubic interpolation. The warp does the rest.
    image, first = image[y: y + h, x: x + w], int(scale) if scale > 3 else 1
    if first > 1:
        image = cv2.resize(image, (w * first, h * first), interpolation=cv2.INTER_CUBIC)
    a, b, c, d = (v / first for v in m) if first > 1 else m
    shift = (first - 1) / 2  # the enlarged pixel centres: x' = first * x + shift
    affine = np.array([[a, b, -left - (a + b) * shift], [c, d, -top - (c + d) * shift]], np.float32)
    return cv2.warpAffine(image, affine, size, flags=cv2.INTER_LINEAR)


@lru_cache(maxsize=None)
def cap_height(font: int) -> int:
    """The height of a capital letter in `font` at scale 1 (measuring costs about 0.1 ms)."""
    return cv2.getTextSize("H", font, 1.0, 1)[0][1]


def random_word(rng: np.random.Generator) -> str:
    """2 to 9 random letters, capitalized 3 times in 10; drawn in one call to `rng`."""
    draws = rng.random(11).tolist()
    word = "".join(LETTERS[int(u * len(LETTERS))] for u in draws[1: 3 + int(draws[0] * 8)])
    return word.capitalize() if draws[10] < 0.3 else word


def mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (1 - t) * a + t * b


class Writer:
    """Plans one page: paper, lines of numbers, singles and distractors, keeping them from overlapping."""

    def __init__(self, rng: np.random.Generator, pool: mnist.Digits, size: int):
        self.rng, self.pool, self.size = rng, pool, size
        self.scale = size / 640
        self.margin = int(MARGIN * size)
        self.occupied = Occupancy(size)
        self.paper = PAPERS[rng.integers(len(PAPERS))] * rng.uniform(0.88, 1.0)
        self.layout = Layout(size, self.paper, int(rng.integers(2**31)))
        pen = draw(rng, INK_ODDS)
        self.ink = INKS[pen]
        self.pen = Pen(rng.uniform(0.15, 0.6), rng.uniform(0.1, 0.4), rng.uniform(0, 0.06))
        self.darkness = rng.uniform(0.45, 0.7) if pen == PENCIL else rng.uniform(0.65, 0.97)
        self.n_digits = 0

    def digit_height(self) -> float:
        low, high = HEIGHTS
        return float(np.exp(self.rng.uniform(np.log(low), np.log(high)))) * self.scale

    def plan(self) -> Layout:
        rng = self.rng
        style = STYLES[draw(rng, STYLE_ODDS)]
        height = self.digit_height()
        pitch = max(height * rng.uniform(1.4, 2.2), 8 * self.scale)
        first = self.margin + pitch * rng.uniform(0.8, 1.5)  # the first line: digits sit on it, and on the rules
        if style == "ruled":
            self.add_rules(first, pitch)
        elif style == "grid":
            self.add_grid(first, pitch / rng.choice([1, 2]))
        if rng.random() >= BLANK_PAGES:
            self.write_lines(first, height, pitch, slope=0.0 if style in ("ruled", "grid") else rng.normal(0, 0.015),
                             labelled=style == "form")
            for _ in range(rng.integers(0, 12)):  # numbers and single digits written anywhere, of any size
                self.write_number(self.digit_height(), *self.random_spot(), n=int(rng.choice([1, 1, 2, 3, 4])))
        for _ in range(rng.integers(0, 3)):
            self.add_text_block()
        for _ in range(rng.integers(0, 4)):
            self.add_stroke(height)
        for _ in range(rng.integers(0, 3)):
            self.layout.smudges.append((*self.random_spot(), rng.uniform(8, 60) * self.scale, rng.uniform(0.03, 0.15),
                                        rng.uniform(0.3, 1), rng.uniform(0, 180)))
        return self.layout

    def random_spot(self) -> tuple[float, float]:
        """A point inside the margins: (x, baseline y)."""
        return tuple(self.rng.uniform(self.margin, self.size - self.margin, 2))

    def write_lines(self, y: float, height: float, pitch: float, slope: float, labelled: bool) -> None:
        """Numbers along lines `pitch` apart from baseline `y` down; on a form, each after a printed label."""
        rng, size = self.rng, self.size
        while y < size - self.margin and self.n_digits < MAX_DIGITS:
            if rng.random() < 0.85:  # some lines stay empty
                x = self.margin + rng.uniform(0, 0.3) * (size - 2 * self.margin)
                while x < size - self.margin:
                    if labelled and rng.random() < 0.6:
                        x = self.write_text(random_word(rng) + ":", x, y, height * rng.uniform(0.4, 0.7))
                        x += height * rng.uniform(0.2, 0.6)
                    h = height * rng.uniform(0.85, 1.15)
                    n = 1 + draw(rng, LENGTH_ODDS)
                    baseline = y + slope * x - rng.uniform(0, 0.1) * h  # on the line or just above it
                    x = self.write_number(h, x, baseline, n) + h * rng.uniform(0.7, 3)
            y += pitch

    def write_number(self, height: float, x: float, baseline: float, n: int) -> float:
        """Write up to n digits from (x, baseline), as many as fit in free space; return the x after them."""
        rng, pool = self.rng, self.pool
        n = min(n, int((self.size - self.margin - x) / (0.8 * height)))  # digits are about 0.7 as wide as tall
        guess = (x, baseline - 1.3 * height, x + n * 0.8 * height, baseline + 0.2 * height)  # before writing
        if n < 1 or not self.occupied.free(guess, pad=0.15 * height):
            return guess[2]
        # All of the number's draws in two calls, then plain Python per digit: a call to `rng` or a numpy operation
        # on a few numbers costs more than the arithmetic
        uniforms, normals = rng.random((5, n)).tolist(), rng.standard_normal((3, n)).tolist()
        digits = []
        for pick, size, shade, gap, touch, shear, angle, drop in zip(*uniforms, *normals):
            pick, h = int(pick * len(pool)), height * (0.9 + 0.2 * size)
            if written := write_digit(pool.images[pick], h, 0.12 * shear, 4 * angle, self.pen):
                coverage, hull = written
                top = int(round(baseline + 0.04 * drop * height)) - coverage.shape[0]
                digits.append(Digit(int(pool.labels[pick]), pool.name(pick), int(round(x)), top, coverage,
                                    (0.9 + 0.1 * shade) * self.darkness, hull))
                touching = touch < 0.1  # the next digit touches or overlaps this one
                x += coverage.shape[1] + height * (-0.12 * gap if touching else 0.04 + 0.31 * gap)
        if not digits:
            return x
        number = Number(digits, self.ink if rng.random() < 0.9 else INKS[draw(rng, INK_ODDS)])
        x1, y1, x2, y2 = number.box
        inside = min(x1, y1) >= self.margin and max(x2, y2) <= self.size - self.margin
        if inside and self.occupied.free(number.box, pad=0.15 * height):
            self.occupied.take(number.box)
            self.layout.numbers.append(number)
            self.n_digits += len(digits)
            if rng.random() < 0.08:
                self.underline(number.box, height)
        return x

    def write_text(self, text: str, x: float, baseline: float, height: float) -> float:
        """Print `text` (letters only) with cap height about `height` if it fits; return the x after it."""
        font = FONTS[int(self.rng.random() * len(FONTS))]
        scale = height / cap_height(font)
        thickness = max(1, int(round(scale * self.rng.uniform(1.0, 2.0))))
        (w, h), descent = cv2.getTextSize(text, font, scale, thickness)
        box = (x, baseline - h, x + w, baseline + descent)
        if max(box[2], box[3]) <= self.size - self.margin and self.occupied.free(box, pad=2):
            self.occupied.take(box)
            self.layout.texts.append((text, int(x), int(baseline), font, scale, thickness))
        return x + w

    def add_text_block(self) -> None:
        rng = self.rng
        height = rng.uniform(5, 12) * self.scale
        x, y = self.random_spot()
        for _ in range(rng.integers(1, 6)):
            words = " ".join(random_word(rng) for _ in range(rng.integers(2, 8)))
            self.write_text(words, x, y, height)
            y += height * rng.uniform(1.8, 2.4)

    def add_rules(self, y: float, pitch: float) -> None:
        colour = mix(self.paper, RULE_COLORS[self.rng.integers(len(RULE_COLORS))], self.rng.uniform(0.4, 0.8))
        y -= np.floor(y / pitch) * pitch  # the rules cover the page, through y
        while y < self.size:
            self.layout.rules.append((0, int(y), self.size, int(y), colour))
            y += pitch
        if self.rng.random() < 0.5:  # the red margin line
            x = int(self.margin * self.rng.uniform(0.5, 1.0))
            self.layout.rules.append((x, 0, x, self.size, mix(self.paper, RULE_COLORS[2], 0.7)))

    def add_grid(self, y: float, cell: float) -> None:
        colour = mix(self.paper, RULE_COLORS[self.rng.integers(2)], self.rng.uniform(0.3, 0.7))
        for v in np.arange(y % cell, self.size, cell):
            self.layout.rules += [(0, int(v), self.size, int(v), colour), (int(v), 0, int(v), self.size, colour)]

    def add_stroke(self, height: float) -> None:
        """A long wavy line, arc or cross-out in free space: pen marks that are no digit (so never short)."""
        rng = self.rng
        length = max(rng.uniform(3, 8) * height, 40 * self.scale)
        t = np.linspace(0, 1, 24)[:, None]
        kind = rng.integers(3)
        if kind == 0:  # wavy line
            points = np.hstack([t * length, np.sin(t * rng.uniform(2, 12)) * rng.uniform(0.02, 0.1) * length])
        elif kind == 1:  # arc of an ellipse
            angle = rng.uniform(0, 2 * np.pi) + t * rng.uniform(1, 2.5)
            points = np.hstack([np.cos(angle), rng.uniform(0.3, 1) * np.sin(angle)]) * length / 2
        else:  # cross-out scribble
            points = np.hstack([t * length, (np.arange(24)[:, None] % 2) * rng.uniform(0.2, 0.4) * length])[:8]
        turn = rng.uniform(-0.3, 0.3)
        points = points @ np.array([[np.cos(turn), np.sin(turn)], [-np.sin(turn), np.cos(turn)]])
        points += np.array(self.random_spot()) - points.min(axis=0)
        lo, hi = points.min(axis=0), points.max(axis=0)
        if hi.max() <= self.size - self.margin and self.occupied.free((*lo, *hi), 4):
            self.occupied.take((*lo, *hi))
            self.layout.strokes.append((points, self.stroke_width(), self.pen_colour()))

    def underline(self, box, height: float) -> None:
        x1, _, x2, y2 = box
        y = y2 + height * self.rng.uniform(0.12, 0.3)
        points = np.array([[x1, y], [x2, y + self.rng.normal(0, 0.05) * height]])
        if self.occupied.free((x1, y - 1, x2, y + 1)):
            self.layout.strokes.append((points, self.stroke_width(), self.pen_colour()))

    def stroke_width(self) -> int:
        return max(1, int(round(self.rng.uniform(1, 3) * self.scale)))

    def pen_colour(self) -> np.ndarray:
        """What the pen leaves on this paper: cv2 draws strokes in one colour over the paper."""
        return mix(self.paper, self.ink * self.paper, self.darkness)


def plan_page(rng: np.random.Generator, pool: mnist.Digits, size: int) -> Layout:
    """A random page layout drawing digits from `pool`."""
    return Writer(rng, pool, size).plan()


def paper(layout: Layout) -> np.ndarray:
    """RGB uint8 paper with uneven light, texture, grain and smudges.

    The smooth parts (texture, light, smudges) are made at an eighth of the size, the grain at half; then enlarged.
    """
    rng = np.random.default_rng(layout.texture_seed)
    half, eighth = layout.size // 2, layout.size // 8
    cloud = cv2.resize(rng.standard_normal((8, 8), np.float32), (eighth, eighth), interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(0, 256, (half, half), np.uint8)
    side = np.linspace(-0.5, 0.5, eighth, dtype=np.float32)
    light = rng.uniform(0, 2 * np.pi)  # where the light comes from: one side of the page is brighter
    ramp = np.add.outer(side * np.sin(light), side * np.cos(light))
    texture, roughness, unevenness = rng.uniform(0.005, 0.03), rng.uniform(0.01, 0.06), rng.uniform(0, 0.2)
    shade = 1 - roughness / 2 + cloud * texture + ramp * unevenness - smudges(layout.smudges, eighth)
    tone = cv2.resize(shade, (half, half), interpolation=cv2.INTER_LINEAR) + grain * np.float32(roughness / 255)
    rgb = cv2.merge([cv2.convertScaleAbs(tone, alpha=float(c) * 255) for c in layout.paper])
    return cv2.resize(rgb, (layout.size, layout.size), interpolation=cv2.INTER_LINEAR)


def smudges(ellipses: list[tuple], side: int) -> np.ndarray | float:
    """How much smudges darken the paper (0..1) on a `side` x `side` grid (an eighth of the page): blurred ellipses."""
    if not ellipses:
        return 0.0
    dirt = np.zeros((side, side), np.float32)
    for x, y, radius, darkness, stretch, angle in ellipses:
        axes = (max(int(radius / 8), 1), max(int(radius * stretch / 8), 1))
        cv2.ellipse(dirt, (int(x / 8), int(y / 8)), axes, angle, 0, 360, darkness, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(dirt, (0, 0), 1.5)


def colour255(colour: np.ndarray) -> tuple[float, ...]:
    return tuple(float(c) * 255 for c in colour)


def draw_lines(layout: Layout, image: np.ndarray) -> None:
    """Ruled or grid lines, printed text and pen strokes, each in its colour, in that order."""
    for x1, y1, x2, y2, colour in layout.rules:
        cv2.line(image, (x1, y1), (x2, y2), colour255(colour), 1, cv2.LINE_AA)
    for text, x, y, font, scale, thickness in layout.texts:
        cv2.putText(image, text, (x, y), font, scale, colour255(PRINT_COLOR * layout.paper), thickness, cv2.LINE_AA)
    for points, thickness, colour in layout.strokes:
        cv2.polylines(image, [np.round(points).astype(np.int32)], False, colour255(colour), thickness, cv2.LINE_AA)


def render(layout: Layout) -> np.ndarray:
    """The page as RGB uint8, before photo effects. A digit changes only the pixels of its own box."""
    image = paper(layout)
    draw_lines(layout, image)
    for number in layout.numbers:
        for digit in number.digits:
            x1, y1, x2, y2 = digit.box
            absorbed = (digit.darkness * digit.coverage)[..., None] * (1 - number.ink)
            image[y1:y2, x1:x2] = image[y1:y2, x1:x2] * (1 - absorbed) + 0.5
    return image


def reading_order(numbers: list[Number]) -> list[Number]:
    """Numbers top to bottom by line, left to right within a line: by detect.py's own line rule (digitdet.reading),
    so that pages are scored against the order their reader uses."""
    boxes = np.array([n.box for n in numbers], np.float64).reshape(-1, 4)
    lines = group_lines(boxes, [[i] for i in range(len(numbers))], slope=0.0)
    return [numbers[members[0]] for line in lines for members in line]


def make_page(rng: np.random.Generator, pool: mnist.Digits, size: int):
    """A page: (RGB image, numbers in reading order, each digit's box after the photo effects)."""
    layout = plan_page(rng, pool, size)
    layout.numbers = reading_order(layout.numbers)
    image = render(layout)
    digits = [d for n in layout.numbers for d in n.digits]
    outlines = photo.outlines([d.hull for d in digits], [(d.x, d.y) for d in digits])
    image, boxes = photo.photograph(image, *outlines, int(rng.integers(2**31)))
    return image, layout.numbers, boxes


def page_record(name: str, size: int, numbers: list[Number], boxes: np.ndarray) -> dict:
    """The sidecar JSON of a page: its numbers in reading order with their boxes in pixels (rows of `boxes`)."""
    records, boxes = [], iter(np.round(np.asarray(boxes, np.float64), 2).tolist())
    for number in numbers:
        digit_boxes = [next(boxes) for _ in number.digits]
        records.append({"digits": "".join(str(d.cls) for d in number.digits),
                        "box": list(enclosing(digit_boxes)),
                        "digit_boxes": digit_boxes,
                        "mnist": [d.source for d in number.digits]})
    return {"image": name, "width": size, "height": size, "numbers": records}


def page_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Each page's own random stream, so a page does not depend on the others or on the workers."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS.index(split), index)))


_pools: dict[str, mnist.Digits] = {}


def start_worker(mnist_folder: Path, splits: tuple[str, ...]) -> None:
    """Load the digit pools once per process; worker processes run in parallel, so one OpenCV thread each."""
    cv2.setNumThreads(1)
    _pools.update(mnist.load_pools(mnist_folder, splits))


@dataclass(frozen=True)
class Chunk:
    split: str
    start: int
    stop: int
    out_root: Path
    size: int
    seed: int


def write_chunk(chunk: Chunk) -> int:
    """Write pages start..stop-1 of a split; return how many."""
    for index in range(chunk.start, chunk.stop):
        image, numbers, boxes = make_page(page_rng(chunk.seed, chunk.split, index), _pools[chunk.split], chunk.size)
        path = chunk.out_root / "images" / chunk.split / f"{index:06d}.jpg"
        if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"{path}: could not write image")
        classes = [d.cls for n in numbers for d in n.digits]
        label_path(path).write_text(yolo_lines(classes, boxes, chunk.size))
        numbers_path(path).write_text(json.dumps(page_record(path.name, chunk.size, numbers, boxes)))
    return chunk.stop - chunk.start


def yolo_lines(classes: list[int], boxes: np.ndarray, size: int) -> str:
    """A page's label file: one line per box (x1, y1, x2, y2 in pixels).

    Normalized for all boxes at once: a Label per box costs about 1 ms a page.
    """
    x1, y1, x2, y2 = (np.asarray(boxes, np.float64).reshape(-1, 4) / size).T
    columns = (v.tolist() for v in ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1))
    return "".join(yolo_line(*row) + "\n" for row in zip(classes, *columns))


def write_chunks(chunks: list[Chunk], mnist_folder: Path, pools: dict[str, mnist.Digits], workers: int,
                 progress: bool) -> None:
    """Write the chunks here with `pools`, or in worker processes that load them again from `mnist_folder`."""
    total = sum(c.stop - c.start for c in chunks)
    workers = min(workers, total // MIN_PAGES_PER_WORKER)
    bar = tqdm(total=total, desc="pages", unit="page", disable=not progress)
    with bar:
        if workers <= 1:
            _pools.update(pools)
            try:
                for chunk in chunks:
                    bar.update(write_chunk(chunk))
            finally:
                _pools.clear()
            return
        # spawn, not fork: the caller may already hold torch's thread pools, which do not survive a fork
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=start_worker,
                                 initargs=(mnist_folder, tuple(pools))) as pool:
            for done in pool.map(write_chunk, chunks):
                bar.update(done)


def run(mnist_dir: str | Path | None, out_dir: str | Path, counts: dict[str, int] | None = None, size: int = 640,
        seed: int = 0, workers: int = 2, overwrite: bool = False, progress: bool = True,
        preview: str | Path | None = None) -> Path:
    """Build a dataset of synthetic handwritten pages and return its data.yaml.

    Args:
        mnist_dir: folder with the four MNIST idx .gz files; None: $DIGITDET_MNIST, else download (digitdet.mnist).
        out_dir: the folder to create; refused if it exists, unless `overwrite`.
        counts: pages per split, e.g. {"train": 8000, "val": 1000, "test": 1000}; splits with 0 are left out.
        size: page side in pixels (pages are square).
        seed: the random seed; the same seed gives the same files.
        workers: worker processes (1 runs in this process).
        overwrite: replace an existing `out_dir` once the new one is complete.
        progress: show a progress bar.
        preview: if given, write a contact sheet of 16 pages with their boxes and digits to this PNG.
    """
    counts = {split: n for split, n in (COUNTS if counts is None else counts).items() if n > 0}
    if bad := set(counts) - set(SPLITS):
        raise ValueError(f"unknown splits {sorted(bad)}; splits are {SPLITS}")
    if "train" not in counts:
        raise ValueError("a dataset needs train pages")
    if size < 64:
        raise ValueError(f"page size {size} is too small (at least 64 pixels)")
    folder = mnist.mnist_dir(mnist_dir)
    splits = tuple(counts)
    pools = mnist.load_pools(folder, splits)  # checks the files before anything is written
    out_dir = Path(out_dir).resolve()
    refuse_overlap(out_dir, [folder])
    with build_into(out_dir, overwrite) as building:
        for split in splits:
            for kind in ("images", "labels", "numbers"):
                (building / kind / split).mkdir(parents=True)
        chunks = [Chunk(split, start, min(start + CHUNK, n), building, size, seed)
                  for split, n in counts.items() for start in range(0, n, CHUNK)]
        write_chunks(chunks, folder, pools, workers, progress)
        write_data_yaml(building / "data.yaml", out_dir, DIGITS, {split: f"images/{split}" for split in splits},
                        generator="augment.pages", seed=seed, size=size, counts=counts, mnist=str(folder.resolve()))
    if preview is not None:
        write_preview(out_dir, Path(preview))
    return out_dir / "data.yaml"


def draw_page(image: np.ndarray, labels: list[Label], record: dict, side: int) -> np.ndarray:
    """A page scaled to `side` pixels with its number boxes (orange) and digit boxes and classes (green)."""
    scale = side / image.shape[1]
    image = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    for number in record["numbers"]:
        x1, y1, x2, y2 = (int(round(v * scale)) for v in number["box"])
        cv2.rectangle(image, (x1 - 2, y1 - 2), (x2 + 2, y2 + 2), (0, 140, 255), 1)
    for label in labels:
        cx, cy, w, h = (v * side for v in label.box)
        x1, y1 = int(round(cx - w / 2)), int(round(cy - h / 2))
        cv2.rectangle(image, (x1, y1), (int(round(cx + w / 2)), int(round(cy + h / 2))), (0, 200, 0), 1)
        cv2.putText(image, DIGITS[label.cls], (x1, max(y1 - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 230), 1,
                    cv2.LINE_AA)
    return image


def write_preview(out_dir: Path, path: Path, count: int = 16, side: int = 400) -> Path:
    """A 4 x 4 contact sheet of the first pages (train first) with their boxes and digits, for a person to check."""
    images = [p for split in SPLITS for p in sorted((out_dir / "images" / split).glob("*.jpg"))][:count]
    if not images:
        raise DatasetError(f"{out_dir}: no pages to preview")
    tiles = [draw_page(read_image(p), read_labels(label_path(p), len(DIGITS)),
                       json.loads(numbers_path(p).read_text()), side) for p in images]
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % 4)
    sheet = np.vstack([np.hstack(tiles[i: i + 4]) for i in range(0, len(tiles), 4)])
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), sheet):
        raise OSError(f"{path}: could not write the preview")
    return path


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m augment.pages", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, default=None,
                        help=f"folder with the four MNIST idx .gz files (default: ${mnist.ENV_VAR}, else download)")
    parser.add_argument("--out", type=Path, default=Path("data/pages"), help="folder to create (default: data/pages)")
    for split, n in COUNTS.items():
        parser.add_argument(f"--{split}", type=int, default=n, help=f"{split} pages (default: {n})")
    parser.add_argument("--size", type=int, default=640, help="page side in pixels (default: 640)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="worker processes")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--preview", type=Path, default=None, help="also write a contact sheet of 16 pages (PNG)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opt = parse_opt(argv)
    counts = {split: getattr(opt, split) for split in COUNTS}
    try:
        data_yaml = run(opt.mnist, opt.out, counts, opt.size, opt.seed, opt.workers, opt.overwrite,
                        preview=opt.preview)
    except (DatasetError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {data_yaml}" + (f" and {opt.preview}" if opt.preview else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
