"""Digit ink: grey-level digit images scaled, slanted and turned into coverage patches cropped to their ink."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import cv2
import numpy as np

SHRINK_FIRST = 0.35  # images scaled below this are first shrunk by averaging (`enlarge`)
INK_LEVEL = 0.5  # a pixel is a digit's ink where its stroke coverage reaches this; boxes are the box of the ink


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


PRINT = Pen(threshold=INK_LEVEL, softness=1.0, thinning=0.0)  # coverage = grey level / 255: type as it is rendered


@lru_cache(maxsize=None)
def thinning_kernel(width: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))


def write_digit(image: np.ndarray, height: float, shear: float, angle: float, pen: Pen, hull: bool = True,
                average: bool = False) -> tuple[np.ndarray, np.ndarray | None] | None:
    """An MNIST digit (white on black) as a coverage patch about `height` pixels tall, cropped to its ink, and the
    (x, y) pixels of its ink's convex hull in the patch; None when no pixel reaches INK_LEVEL.

    `shear` slants it (x shift per unit of height) and `angle` (degrees) turns it. Without `hull` (ink that gets no
    box: letters, signs), the hull is None. `average`: see `enlarge`.
    """
    patch = enlarge(image, height, shear, angle, average)
    if (width := int(pen.thinning * height)) >= 2:
        patch = cv2.erode(patch, thinning_kernel(width))
    found = crop_to_ink(patch, pen, hull)
    return None if found is None else found[:2]


def crop_to_ink(patch: np.ndarray, pen: Pen, hull: bool = True):
    """(coverage, hull, (x, y)): the coverage of a grey-level patch (white on black) through `pen`, cropped to its
    ink; the (x, y) pixels of the ink's convex hull in the crop (None without `hull`); and the crop's top-left pixel
    in `patch`. None when there is no ink."""
    _, ink = cv2.threshold(patch, pen.ink_grey - 1, 1, cv2.THRESH_BINARY)
    if not hull:
        x, y, w, h = cv2.boundingRect(ink)
        return None if w == 0 else (cv2.LUT(patch[y: y + h, x: x + w], pen.coverage), None, (x, y))
    # the outer edges of the ink hold its hull, in a few points; the hull's box is the ink's
    edges, _ = cv2.findContours(ink, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not edges:
        return None
    points = cv2.convexHull(edges[0] if len(edges) == 1 else np.concatenate(edges)).reshape(-1, 2)
    x, y, w, h = cv2.boundingRect(points)
    return cv2.LUT(patch[y: y + h, x: x + w], pen.coverage), points - np.int32([x, y]), (x, y)


def enlarge(image: np.ndarray, height: float, shear: float, angle: float, average: bool = False) -> np.ndarray:
    """The grey levels of a digit's ink, scaled to `height`, slanted and turned, with a 2-pixel border. With
    `average`, an image shrunk below SHRINK_FIRST is shrunk by averaging first (font glyphs, whose thin strokes a
    warp would break; MNIST digits keep their pixels as they always had them)."""
    x, y, w, h = cv2.boundingRect(image)
    scale = height / h
    c, s = scale * math.cos(math.radians(angle)), scale * math.sin(math.radians(angle))
    m = (c, shear * c - s, s, shear * s + c)  # scale * rotation * shear, row by row
    (aw, bh), (cw, dh) = (m[0] * w, m[1] * h), (m[2] * w, m[3] * h)  # the corners' x: 0, aw, bh, aw + bh
    left, top = math.floor(min(aw, 0) + min(bh, 0)) - 2, math.floor(min(cw, 0) + min(dh, 0)) - 2
    size = (math.ceil(max(aw, 0) + max(bh, 0)) + 2 - left, math.ceil(max(cw, 0) + max(dh, 0)) + 2 - top)
    # Large digits are first enlarged smoothly (cubic, as linear shows facets), by a whole factor: OpenCV resizes
    # about ten times faster than it warps with cubic interpolation. Small ones may be first shrunk by averaging, as
    # a warp to under a third of the size skips pixels and breaks thin strokes. The warp does the rest.
    image, first = image[y: y + h, x: x + w], int(scale) if scale > 3 else 1
    if first > 1:
        image = cv2.resize(image, (w * first, h * first), interpolation=cv2.INTER_CUBIC)
    elif average and scale < SHRINK_FIRST:  # to the final size: the warp then only slants and turns
        image = cv2.resize(image, (max(round(scale * w), 1), max(round(scale * h), 1)), interpolation=cv2.INTER_AREA)
    fx, fy = image.shape[1] / w, image.shape[0] / h  # the resize's factors, 1 if none
    a, b, c, d = m[0] / fx, m[1] / fy, m[2] / fx, m[3] / fy
    sx, sy = (fx - 1) / 2, (fy - 1) / 2  # the resized pixel centres: x' = fx * x + sx
    affine = np.array([[a, b, -left - a * sx - b * sy], [c, d, -top - c * sx - d * sy]], np.float32)
    return cv2.warpAffine(image, affine, size, flags=cv2.INTER_LINEAR)
