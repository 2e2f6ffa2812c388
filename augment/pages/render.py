"""Rendering a planned page: paper with light, texture and smudges, security backgrounds, display windows, rules,
printed text, strokes, marks and digits."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from augment.pages.layout import Layout

PRINT_COLOR = np.array([0.12, 0.12, 0.12], np.float32)


def paper(layout: Layout) -> np.ndarray:
    """RGB uint8 paper with uneven light, texture, grain and smudges.

    The smooth parts (texture, light, smudges) are made at an eighth of the size, the grain at half; then enlarged.
    """
    rng = np.random.default_rng(layout.texture_seed)
    width, height = layout.width, layout.height
    half, eighth = (max(width // 2, 1), max(height // 2, 1)), (max(width // 8, 1), max(height // 8, 1))
    cloud = cv2.resize(rng.standard_normal((8, 8), np.float32), eighth, interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(0, 256, half[::-1], np.uint8)
    longest = max(eighth)  # the page's longer side spans -0.5 .. 0.5, the shorter one less
    across, down = (np.linspace(-0.5, 0.5, n, dtype=np.float32) * np.float32((n - 1) / max(longest - 1, 1))
                    for n in eighth)
    light = rng.uniform(0, 2 * np.pi)  # where the light comes from: one side of the page is brighter
    ramp = np.add.outer(down * np.sin(light), across * np.cos(light))
    texture, roughness, unevenness = rng.uniform(0.005, 0.03), rng.uniform(0.01, 0.06), rng.uniform(0, 0.2)
    shade = 1 - roughness / 2 + cloud * texture + ramp * unevenness - smudges(layout.smudges, eighth)
    tone = cv2.resize(shade, half, interpolation=cv2.INTER_LINEAR) + grain * np.float32(roughness / 255)
    rgb = cv2.merge([cv2.convertScaleAbs(tone, alpha=float(c) * 255) for c in layout.paper])
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)


def smudges(ellipses: list[tuple], size: tuple[int, int]) -> np.ndarray | float:
    """How much smudges darken the paper (0..1) on a grid of `size` (width, height: an eighth of the page's):
    blurred ellipses."""
    if not ellipses:
        return 0.0
    dirt = np.zeros(size[::-1], np.float32)
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
    """The image as RGB uint8, before photo effects. A digit changes only the pixels of its own box."""
    image = paper(layout)
    for x1, y1, x2, y2, colour, pattern, side in layout.guilloche:
        lines = guilloche(pattern, side)[y1:y2, x1:x2]
        region = image[y1:y2, x1:x2]
        for c in range(3):  # each channel loses the share of light the pattern's colour absorbs
            region[..., c] = cv2.subtract(region[..., c], cv2.multiply(region[..., c], lines,
                                                                       scale=(1 - float(colour[c])) / 255))
    for x1, y1, x2, y2, colour in layout.panels:  # tinted, so the light and grain of the paper stay
        image[y1:y2, x1:x2] = cv2.multiply(image[y1:y2, x1:x2], (*(float(c) for c in colour / layout.paper), 1.0))
    draw_lines(layout, image)
    for patch in layout.marks + [d for n in layout.numbers for d in n.digits]:
        x1, y1, x2, y2 = patch.box
        absorbed = (patch.darkness * patch.coverage)[..., None] * (1 - patch.colour)
        image[y1:y2, x1:x2] = image[y1:y2, x1:x2] * (1 - absorbed) + 0.5
    return image


@lru_cache(maxsize=16)
def guilloche(pattern: int, side: int) -> np.ndarray:
    """A cheque's security background over a `side` x `side` page, as uint8 line coverage: families of fine
    interlaced waves, the same for the same arguments. Made once per process and page size (a few ms); a close-up
    (never larger than its page) shows a corner of it."""
    rng = np.random.default_rng(pattern)
    lines = np.zeros((side, side), np.uint8)
    x = np.linspace(-8, side + 8, max(side // 6, 16))  # waves are smooth: a point every 6 pixels draws them
    for _ in range(2 + pattern % 2):  # interlaced families of waves, each with its own wavelength and phase drift
        period, swing, drift = rng.uniform(0.15, 0.5) * side, rng.uniform(0.02, 0.08) * side, rng.uniform(0.1, 0.6)
        spacing = rng.uniform(3, 7)
        for k, y0 in enumerate(np.arange(-swing - spacing, side + swing + spacing, spacing)):
            y = y0 + swing * np.sin(2 * np.pi * x / period + k * drift)
            cv2.polylines(lines, [np.round(np.column_stack([x, y]) * 16).astype(np.int32)], False, 255, 1,
                          cv2.LINE_AA, shift=4)
    return lines
