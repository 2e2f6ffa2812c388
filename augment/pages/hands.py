"""Handwriting: digits from MNIST's writers, or from a handwriting font with stroke-level variation.

A font repeats one glyph for every 7; a hand never does. So each font digit is written from its glyph with its own
elastic distortion (smooth waves of displacement), the page's pen width, slant, jitter and now and then a broken
stroke, then goes through the same pen and scaling as an MNIST digit (augment/pages/ink.py).
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from augment.pages import fonts
from augment.pages.ink import Pen, write_digit
from digitdet import mnist

REFERENCE = 28  # glyphs are varied with digits this many pixels tall (MNIST's are 20), then scaled
BORDER = 4  # pixels around a glyph for the pen width and the distortion to grow into
WOBBLE = 0.05  # the largest elastic displacement, a fraction of the glyph's height
BROKEN = 0.08  # of font digits have a gap in a stroke, as a pen that skips
WEIGHTS = (0.06, 0.13)  # pen widths, a fraction of the digit height (MNIST's strokes are about 0.1 to 0.15)
MIN_STROKE = 1.6  # pixels: the thinnest line a pen draws on the page, however small the digit
FRINGE = 63  # grey levels up to this, the edge of the wobbled glyph, are cleared
MAX_WIDTH = 9  # pixels at REFERENCE: a pen for the smallest digits, whose glyphs are then mostly ink


class MnistHand:
    """Digits of MNIST's writers from one pool (train, val or test)."""

    def __init__(self, pool: mnist.Digits):
        self.pool = pool

    def digit(self, u: float, height: float, shear: float, angle: float, pen: Pen, rng: np.random.Generator):
        """(class, source, coverage, hull) of the digit at `u` (0..1) of the pool, or None if it has no ink."""
        index = int(u * len(self.pool))
        written = write_digit(self.pool.images[index], height, shear, angle, pen)
        return None if written is None else (int(self.pool.labels[index]), self.pool.name(index), *written)


class FontHand:
    """Digits, letters and signs in a handwriting font, written with a pen `weight` wide (a fraction of the digit
    height), each one varied."""

    def __init__(self, face: fonts.Face, weight: float):
        self.face = face
        self.stroke = max(round(weight * REFERENCE), 2)  # the pen's width, in pixels at REFERENCE

    @property
    def name(self) -> str:
        return self.face.name

    def digit(self, u: float, height: float, shear: float, angle: float, pen: Pen, rng: np.random.Generator):
        """(class, source, coverage, hull) of digit int(u * 10) about `height` tall, or None if it has no ink."""
        cls = int(u * 10)
        written = write_digit(self.varied(str(cls), rng, self.pen_width(height)), height, shear, angle, pen,
                              average=True)
        return None if written is None else (cls, f"hand:{self.name}", *written)

    def pen_width(self, height: float) -> int:
        """The pen's width at REFERENCE for a digit `height` pixels tall: never under MIN_STROKE pixels once scaled,
        as a pen's line does not get thinner when the writing gets smaller."""
        return min(max(self.stroke, math.ceil(MIN_STROKE * REFERENCE / height)), MAX_WIDTH)

    def write(self, char: str, scale: float, shear: float, pen: Pen):
        """A letter or sign at `scale` times its size with digits REFERENCE pixels tall, slanted: (coverage, left,
        top), where left and top place its ink from the pen position on the baseline; None if it has no ink."""
        glyph = fonts.glyph(self.face.path, char, reference_size(self.face.path))
        image = pen_glyph(self.face.path, char, self.pen_width(scale * REFERENCE))  # not varied: no labels
        x, y, _, h = cv2.boundingRect(image)
        written = write_digit(image, h * scale, shear, 0.0, pen, hull=False, average=True)
        if written is None:
            return None
        return written[0], (glyph.left - BORDER + x) * scale, (glyph.top - BORDER + y) * scale

    def advance(self, char: str) -> float:
        """How far the pen moves after `char`, with digits REFERENCE pixels tall."""
        return fonts.glyph(self.face.path, char, reference_size(self.face.path)).advance

    def varied(self, char: str, rng: np.random.Generator, width: int) -> np.ndarray:
        """The glyph of `char` at REFERENCE (white on black) with a pen `width` pixels wide, a wobble and maybe a
        broken stroke; all draws in one call to `rng`."""
        image = pen_glyph(self.face.path, char, width)
        h, w = image.shape
        draws = rng.random(10).tolist()
        # an elastic distortion in two slow waves, cheaper than a random field (a page has dozens of digits): each
        # row moves sideways and each column up or down, so strokes bend and lean a little differently every time
        ys, xs = wave_phases(h, w)
        amplitude, (across, down) = WOBBLE * h, pixel_grid(h, w)
        across = across + (amplitude * (2 * draws[0] - 1)) * np.sin(ys * (0.5 + draws[1]) + 6.283 * draws[2])
        down = down + (amplitude * (2 * draws[3] - 1)) * np.sin(xs * (0.5 + draws[4]) + 6.283 * draws[5])
        image = cv2.remap(image, across, down, cv2.INTER_LINEAR)
        if draws[6] < BROKEN:
            ink = np.flatnonzero(image > 127)
            if len(ink):  # a short cut across the stroke at one ink pixel
                y, x = divmod(int(ink[int(draws[7] * len(ink))]), w)
                angle, length = draws[8] * np.pi, width + 1  # half of it: across one stroke
                dx, dy = np.cos(angle) * length, np.sin(angle) * length
                cv2.line(image, (round(x - dx), round(y - dy)), (round(x + dx), round(y + dy)), 0,
                         max(2, round(0.04 * h + draws[9] * 0.04 * h)), cv2.LINE_AA)
        # no faint fringe: a digit is scaled by the box of its nonzero pixels, which should be the box of its ink
        return cv2.threshold(image, FRINGE, 0, cv2.THRESH_TOZERO)[1]


@lru_cache(maxsize=None)
def wave_phases(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """2 pi y / h as a column (h x 1) and 2 pi x / w as a row (1 x w), float32: one period of a wave over a glyph."""
    return (np.arange(h, dtype=np.float32)[:, None] * np.float32(2 * np.pi / h),
            np.arange(w, dtype=np.float32)[None, :] * np.float32(2 * np.pi / w))


@lru_cache(maxsize=None)
def pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The x and the y of every pixel (h x w float32 each): the maps of a remap that moves nothing."""
    down, across = np.mgrid[:h, :w].astype(np.float32)
    return across, down


@lru_cache(maxsize=None)
def reference_size(path: str) -> int:
    """The font size whose digits are REFERENCE pixels tall: fonts differ much in how tall their digits are."""
    return max(round(REFERENCE / fonts.digit_ratio(path)), 8)


@lru_cache(maxsize=None)
def stroke_width(path: str) -> float:
    """The font's stroke width at REFERENCE, in pixels: twice the ink's area over its outline's length (a stroke
    w wide and L long has area w L and an outline about 2 L long), over its ten digits."""
    area = length = 0.0
    for digit in "0123456789":
        ink = (solid_glyph(path, digit) > 127).astype(np.uint8)
        edges, _ = cv2.findContours(ink, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        area += ink.sum()
        length += sum(cv2.arcLength(edge, True) for edge in edges)
    return 2 * area / max(length, 1.0)


def solid_glyph(path: str, char: str) -> np.ndarray:
    """The glyph with digits REFERENCE pixels tall, its grey levels tripled: a hairline (thinner than a pixel, so
    grey) becomes a line the pen can follow."""
    return cv2.convertScaleAbs(fonts.glyph(path, char, reference_size(path)).image, alpha=3.0)


@lru_cache(maxsize=4096)
def pen_glyph(path: str, char: str, width: int) -> np.ndarray:
    """The glyph with a border, its strokes grown or thinned towards `width` pixels. A font thinner than the pen
    has all its strokes grown, its hairlines to the pen's width; a much bolder one is thinned by a pixel a side."""
    image = cv2.copyMakeBorder(solid_glyph(path, char), BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT, value=0)
    if stroke_width(path) < width:
        image = cv2.dilate(image, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)))
    elif stroke_width(path) > width + 2:  # only by a pixel: thin parts would break
        image = cv2.erode(image, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    return image
