"""Read real photos and scans as the 8-bit BGR pixels a person sees, whatever their format, and refuse the files
that would do harm or mislead: too many pixels, or data cut short.

OpenCV's default reader already turns the image by its EXIF orientation, but it drops the alpha channel (a
transparent background often hides black pixels, which would swallow dark ink) and cuts 16-bit images to their
top byte. So the file is read unchanged and each step is done here: EXIF orientation, 16-bit and float depth,
grayscale, and alpha composited onto white paper.

Two rules hold for every reader of images (detect.py, evaluate.py, the app, dataset validation):
  - Pixel limit: a file's header gives its size before any pixel is decoded. A 150 KB PNG can hold 30000 x 30000
    pixels and take gigabytes and minutes to decode, so images over MAX_PIXELS are refused unless the limit is
    raised (--max-pixels).
  - Damaged data is found by decoding, never by looking at the file's last bytes (phones append a video to a
    photo, scanners pad files). OpenCV refuses a cut-short PNG, WebP, BMP or TIFF, but fills a cut-short JPEG with
    grey and only prints a warning; so JPEGs are also decoded by PIL, which raises on data that ends early.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

MAX_PIXELS = 50_000_000  # an 8000 x 6000 photo; more is no page photo, and would take gigabytes to decode
JPEG_FORMATS = {"JPEG", "MPO"}  # MPO: a phone's JPEG with more frames after the first
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


class ImageTooLargeError(ImageReadError):
    """An image with more pixels than the limit; the message names the file and how to raise the limit."""

    def __init__(self, path: Path, limit: int, width: int | None = None, height: int | None = None):
        self.path, self.limit, self.width, self.height = path, limit, width, height
        if width is None:  # beyond PIL's own decompression-bomb limit, which refuses to give the size
            size, hint = f"more than {bomb_limit() / 1e6:.0f} megapixels", "a larger --max-pixels"
        else:
            size, hint = f"{width} x {height} pixels ({width * height / 1e6:.0f} megapixels)", \
                f"--max-pixels {width * height}"
        super().__init__(f"{path}: {size}, over the limit of {limit / 1e6:g} megapixels that guards against "
                         f"decompression bombs; pass {hint} to read it")

    def __reduce__(self):  # rebuilt from its fields, not its message, when it crosses a process boundary
        return type(self), (self.path, self.limit, self.width, self.height)


@dataclass(frozen=True)
class Header:
    """What a file's header says, read without decoding its pixels."""

    kind: str  # the format from the content (a suffix can lie): JPEG, PNG, ...
    width: int
    height: int
    orientation: int = 1  # EXIF orientation (1 = upright)


def bomb_limit() -> int:
    """The pixel count beyond which PIL refuses to open an image at all."""
    return 2 * (Image.MAX_IMAGE_PIXELS or 2**62)


def read_header(path: Path, max_pixels: int | None = MAX_PIXELS) -> Header | None:
    """The file's format, size and EXIF orientation; None when PIL cannot read the file (OpenCV may). Raises an
    ImageTooLargeError for an image over `max_pixels` (None: no limit of ours)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit decides, and says why
            with Image.open(path) as image:
                header = Header(image.format, *image.size, orientation(image))
    except Image.DecompressionBombError:
        if max_pixels is not None and max_pixels < bomb_limit():
            raise ImageTooLargeError(path, max_pixels) from None
        return None  # a limit raised past PIL's: OpenCV reads it, and the size is checked after decoding
    except Exception:  # noqa: BLE001 - PIL raises many types for files it cannot read
        return None
    check_pixels(path, header.width, header.height, max_pixels)
    return header


def orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright); 1 when the image has none or PIL cannot parse its metadata."""
    try:
        return int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - the pixels are fine; bad metadata only means "no orientation"
        return 1


def exif_orientation(path: Path) -> int:
    """The EXIF orientation of the file at `path` (1 = upright, or not readable by PIL)."""
    header = read_header(path, max_pixels=None)
    return header.orientation if header else 1


def check_pixels(path: Path, width: int, height: int, max_pixels: int | None = MAX_PIXELS) -> None:
    """Refuse an image of more than `max_pixels` (None: any size)."""
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(path, max_pixels, width, height)


def decode_error(path: Path) -> str | None:
    """Why PIL cannot decode the whole file, or None. JPEGs are decoded at 1/8 scale: libjpeg still reads every
    byte of their data, so a file cut short is found, at about a third of the cost."""
    kind = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bad metadata and large sizes warn; only a failed decode matters here
            with Image.open(path) as image:
                kind = image.format
                if kind in JPEG_FORMATS:
                    image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except Exception as error:  # noqa: BLE001 - PIL raises many types for bad files
        return f"damaged {kind} image: {error}" if kind else f"unreadable image: {error}"
    return None


def check_image(path: Path, max_pixels: int | None = None) -> str | None:
    """Why a file cannot be used as an image, or None: too many pixels, not an image, or damaged data (found by
    decoding it whole). The dataset validator and the app use this; read_image applies the same rules."""
    try:
        read_header(path, max_pixels)
    except ImageTooLargeError as error:
        return str(error).removeprefix(f"{path}: ")
    return decode_error(path)


def read_image(path: str | Path, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """The image at `path` as upright 8-bit BGR (H, W, 3), as a viewer shows it.

    Grayscale becomes three equal channels, 16-bit and float images are scaled to 8 bits over their type's full
    range, and transparent pixels are composited onto white (dark ink on paper). An image over `max_pixels` (None:
    any size) is refused before it is decoded, and a damaged one is refused, not read in part.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    header = read_header(path, max_pixels)
    if header and header.kind in JPEG_FORMATS and (reason := decode_error(path)):
        raise ImageReadError(f"{path}: {reason}")
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise ImageReadError(f"{path}: unreadable image (not an image, damaged, or a format OpenCV cannot decode)")
    if header is None:  # a format only OpenCV reads: its size is known now
        check_pixels(path, pixels.shape[1], pixels.shape[0], max_pixels)
    pixels = to_bgr(to_uint8(pixels))
    turn = UPRIGHT.get(header.orientation if header else 1)
    return np.ascontiguousarray(turn(pixels)) if turn else pixels


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
