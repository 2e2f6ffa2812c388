"""Read real photos and scans as the 8-bit BGR pixels a person sees, whatever their format.

OpenCV's default reader already turns the image by its EXIF orientation, but it drops the alpha channel (a
transparent background often hides black pixels, which would swallow dark ink) and cuts 16-bit images to their
top byte. So the file is read unchanged and each step is done here: EXIF orientation, 16-bit and float depth,
grayscale, and alpha composited onto white paper.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112
# EXIF orientation -> how to turn the stored pixels upright (the same as PIL's ImageOps.exif_transpose)
UPRIGHT = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.swapaxes(0, 1),  # transposed
    6: lambda a: np.rot90(a, -1),  # stored turned 90 degrees counter-clockwise: turn clockwise
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # transversed
    8: lambda a: np.rot90(a, 1),  # stored turned 90 degrees clockwise: turn counter-clockwise
}


class ImageReadError(OSError):
    """A file that cannot be read as an image; the message names the file."""


def read_image(path: str | Path) -> np.ndarray:
    """The image at `path` as upright 8-bit BGR (H, W, 3), as a viewer shows it.

    Grayscale becomes three equal channels, 16-bit and float images are scaled to 8 bits over their type's full
    range, and transparent pixels are composited onto white (dark ink on paper).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise ImageReadError(f"{path}: unreadable image (not an image, or a format OpenCV cannot decode)")
    pixels = to_bgr(to_uint8(pixels))
    turn = UPRIGHT.get(exif_orientation(path))
    return np.ascontiguousarray(turn(pixels)) if turn else pixels


def exif_orientation(path: Path) -> int:
    """The EXIF orientation tag (1 = upright); 1 when the file has none or PIL cannot parse its metadata."""
    try:
        with Image.open(path) as image:
            return int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - OpenCV decoded the pixels; bad metadata only means "no orientation"
        return 1


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Scale 16-bit and float images to 8 bits (floats are taken as 0..1 unless they exceed 1)."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return (pixels.astype(np.float32) / 257.0).round().astype(np.uint8)
    values = pixels.astype(np.float32)
    scale = 255.0 if np.nanmax(values) <= 1.0 else 1.0
    return np.clip(np.nan_to_num(values) * scale, 0, 255).round().astype(np.uint8)


def to_bgr(pixels: np.ndarray) -> np.ndarray:
    """Three-channel BGR from grayscale, gray+alpha or BGRA (alpha composited onto white)."""
    if pixels.ndim == 2 or pixels.shape[2] == 1:
        return cv2.cvtColor(pixels.reshape(pixels.shape[:2]), cv2.COLOR_GRAY2BGR)
    if pixels.shape[2] == 2:  # gray + alpha
        pixels = cv2.cvtColor(pixels[..., :1], cv2.COLOR_GRAY2BGR), pixels[..., 1:]
        pixels = np.concatenate(pixels, axis=2)
    if pixels.shape[2] == 4:
        alpha = pixels[..., 3:].astype(np.float32) / 255.0
        return (pixels[..., :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return pixels[..., :3]
