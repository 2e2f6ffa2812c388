"""Print: text typeset in a typeface, whose digits are labelled digits and whose other glyphs are one unlabelled mark.

A printed digit's box is the box of its ink (coverage >= INK_LEVEL) as FreeType renders it at that size, the same
rule as for handwritten digits.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from augment.pages import fonts
from augment.pages.ink import PRINT, crop_to_ink
from augment.pages.layout import Digit, Mark

DIGIT_CHARS = "0123456789"
SIZE_STEPS = 1.1  # font sizes are 4 pixels times a power of this


def size_for(face: fonts.Face, digit_height: float) -> int:
    """The font size (pixels to the em) of SIZE_STEPS whose digits are nearest `digit_height` pixels tall: as
    documents use a few standard sizes, and glyphs of a few sizes are rendered once and reused."""
    step = round(math.log(max(digit_height / fonts.digit_ratio(face.path), 4) / 4, SIZE_STEPS))
    return int(round(4 * SIZE_STEPS ** step))


@lru_cache(maxsize=20_000)
def digit_ink(path: str, char: str, size: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]] | None:
    """(coverage, hull, (x, y) of the ink in the glyph's image) of a printed digit, as ink.crop_to_ink gives them."""
    return crop_to_ink(fonts.glyph(path, char, size).image, PRINT)


def width(face: fonts.Face, text: str, size: int) -> float:
    """How far the pen moves over `text`."""
    return sum(fonts.glyph(face.path, char, size).advance for char in text)


def typeset(face: fonts.Face, text: str, size: int, x: float, baseline: float, darkness: float,
            colour: np.ndarray) -> tuple[list[Digit], Mark | None, float]:
    """`text` printed from the pen position (x, baseline): its digits, one mark for all its other glyphs (None if
    there are none) and the pen's x after it."""
    digits, pieces, others = [], [], ""
    for char in text:
        glyph = fonts.glyph(face.path, char, size)
        left, top = int(round(x)) + glyph.left, int(round(baseline)) + glyph.top
        if char in DIGIT_CHARS:
            if (ink := digit_ink(face.path, char, size)) is not None:
                coverage, hull, (dx, dy) = ink
                digits.append(Digit(int(char), f"print:{face.name}", left + dx, top + dy, coverage, darkness, hull,
                                    colour))
        elif char != " ":
            pieces.append((left, top, glyph.coverage))
            others += char
        x += glyph.advance
    return digits, Mark.composed(others, f"print:{face.name}", pieces, darkness, colour), x
