"""What an image shows, planned before any pixel is drawn: digits and their numbers, marks, rules, panels, text."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from augment.pages.ink import INK_LEVEL
from digitdet.boxes import as_boxes, enclosing
from digitdet.reading import group_numbers


@dataclass
class Digit:
    """A digit on the page: its coverage patch (0..1, cropped to its ink) with top-left pixel (x, y)."""

    cls: int
    source: str  # where it comes from: MNIST set and index ("train:51234"), "hand:FONT", "print:FONT" or "segments"
    x: int
    y: int
    coverage: np.ndarray
    darkness: float
    hull: np.ndarray  # (x, y) of the ink pixels on the convex hull of the ink, in the patch
    colour: np.ndarray  # RGB of the pen or print, 0..1

    @property  # cheaper than a cached_property (which takes a lock) for the few times it is read
    def box(self) -> tuple[int, int, int, int]:
        h, w = self.coverage.shape
        return self.x, self.y, self.x + w, self.y + h

    @property
    def ink(self) -> np.ndarray:
        return self.coverage >= INK_LEVEL


@dataclass
class Mark:
    """Ink that is no digit, drawn as a digit is: letters and signs, printed or handwritten, and unlit segments."""

    text: str  # what it shows; never a digit
    source: str  # the font, or "segments"
    x: int
    y: int
    coverage: np.ndarray
    darkness: float
    colour: np.ndarray

    @property
    def box(self) -> tuple[int, int, int, int]:
        h, w = self.coverage.shape
        return self.x, self.y, self.x + w, self.y + h

    @classmethod
    def composed(cls, text: str, source: str, pieces: list[tuple[int, int, np.ndarray]], darkness: float,
                 colour: np.ndarray) -> Mark | None:
        """One mark of coverage patches (0..1) with top-left pixels (x, y): where they overlap, the darker; None
        without pieces."""
        if len(pieces) < 2:
            return cls(text, source, *pieces[0], darkness, colour) if pieces else None
        x1, y1 = min(x for x, _, _ in pieces), min(y for _, y, _ in pieces)
        x2, y2 = max(x + c.shape[1] for x, _, c in pieces), max(y + c.shape[0] for _, y, c in pieces)
        canvas = np.zeros((y2 - y1, x2 - x1), np.float32)
        for x, y, coverage in pieces:
            region = canvas[y - y1: y - y1 + coverage.shape[0], x - x1: x - x1 + coverage.shape[1]]
            np.maximum(region, coverage, out=region)
        return cls(text, source, x1, y1, canvas, darkness, colour)


@dataclass
class WrittenNumber:
    """Digits read together, as a reader groups them (digitdet.reading)."""

    digits: list[Digit]

    @cached_property
    def box(self) -> tuple[int, int, int, int]:
        return enclosing([d.box for d in self.digits])


def numbers_of(digits: list[Digit]) -> list[WrittenNumber]:
    """Digits written together, grouped into numbers as digitdet.reading groups them: a date or an amount whose
    separators are narrower than the reader's gap is one number, as detect.py reads it."""
    boxes = as_boxes([d.box for d in digits])
    return [WrittenNumber([digits[i] for i in members]) for members in group_numbers(boxes)]


@dataclass
class Layout:
    """Everything an image shows; `render` turns it into pixels the same way every time. Colours are RGB 0..1."""

    width: int
    height: int
    paper: np.ndarray
    texture_seed: int
    numbers: list[WrittenNumber] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    rules: list[tuple] = field(default_factory=list)  # (x1, y1, x2, y2, colour) ruled, grid and box lines
    panels: list[tuple] = field(default_factory=list)  # (x1, y1, x2, y2, colour) filled: display windows, fields
    guilloche: list[tuple] = field(default_factory=list)  # (x1, y1, x2, y2, colour, pattern, side) backgrounds
    texts: list[tuple] = field(default_factory=list)  # (text, x, baseline y, font, scale, thickness) printed
    strokes: list[tuple] = field(default_factory=list)  # (points, thickness, colour) pen strokes that are no digit
    smudges: list[tuple] = field(default_factory=list)  # (x, y, radius, darkness, stretch, angle) ellipses
    kind: str = "page"  # or "close-up"
