"""Seven-segment digits, as meters and displays show them, drawn segment by segment.

Segments are named as usual: a (top), b (top right), c (bottom right), d (bottom), e (bottom left), f (top left),
g (middle). Each is a hexagon along its centre line with a small gap to its neighbours; the cell is slanted as on
most meters.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from augment.pages.ink import PRINT, crop_to_ink

LIT = {0: "abcdef", 1: "bc", 2: "abdeg", 3: "abcdg", 4: "bcfg", 5: "acdfg", 6: "acdefg", 7: "abc", 8: "abcdefg",
       9: "abcdfg"}
OTHER_STYLE = {6: "cdefg", 7: "abcf", 9: "abcfg"}  # a 6 without its top bar, a 7 with a hook, a 9 without its tail
BORDER = 2
SUBPIXEL = 4  # bits: cv2.fillPoly places corners at 1/16 of a pixel


def centre_lines(width: float, height: float, thickness: float) -> dict[str, tuple]:
    """Each segment's centre line ((x1, y1), (x2, y2)) in a cell `width` x `height`, y down."""
    left, right, top, middle, bottom = thickness / 2, width - thickness / 2, thickness / 2, height / 2, \
        height - thickness / 2
    return {"a": ((left, top), (right, top)), "g": ((left, middle), (right, middle)),
            "d": ((left, bottom), (right, bottom)), "f": ((left, top), (left, middle)),
            "b": ((right, top), (right, middle)), "e": ((left, middle), (left, bottom)),
            "c": ((right, middle), (right, bottom))}


def cell(segments: str, width: int, height: int, thickness: float, slant: float) -> np.ndarray:
    """The lit `segments` of a cell as grey levels (white on black) with a border; `slant` moves the top right by
    that much of the height."""
    lines = centre_lines(width, height, thickness)
    half, gap = thickness / 2, max(thickness * 0.12, 0.6)
    polygons = []
    for name in segments:
        (x1, y1), (x2, y2) = lines[name]
        along = np.array([x2 - x1, y2 - y1]) / np.hypot(x2 - x1, y2 - y1)
        normal = np.array([-along[1], along[0]])
        start, end = np.array([x1, y1]) + along * gap, np.array([x2, y2]) - along * gap
        points = np.array([start, start + (along + normal) * half, end + (normal - along) * half, end,
                           end - (along + normal) * half, start + (along - normal) * half])
        points[:, 0] += slant * (height - points[:, 1]) + BORDER
        points[:, 1] += BORDER
        polygons.append(np.round(points * (1 << SUBPIXEL)).astype(np.int32))
    canvas = np.zeros((height + 2 * BORDER + 1, width + int(np.ceil(slant * height)) + 2 * BORDER + 1), np.uint8)
    cv2.fillPoly(canvas, polygons, 255, cv2.LINE_AA, shift=SUBPIXEL)
    return canvas


@lru_cache(maxsize=2048)
def digit(cls: int, width: int, height: int, thickness: float, slant: float, other_style: bool = False):
    """(coverage, hull, (x, y)) of digit `cls` in a cell, as ink.crop_to_ink gives them; (x, y) is where its ink
    starts from the cell's top-left corner."""
    segments = OTHER_STYLE.get(cls, LIT[cls]) if other_style else LIT[cls]
    coverage, hull, (x, y) = crop_to_ink(cell(segments, width, height, thickness, slant), PRINT)
    return coverage, hull, (x - BORDER, y - BORDER)


@lru_cache(maxsize=256)
def ghost(width: int, height: int, thickness: float, slant: float) -> np.ndarray:
    """All seven segments of a cell as coverage 0..1 from the cell's top-left corner less BORDER: the unlit segments
    that an LCD still shows faintly."""
    return cell(LIT[8], width, height, thickness, slant).astype(np.float32) / 255
