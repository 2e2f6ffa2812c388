"""Collect labeled pages: check what users upload, and save corrected pages into a YOLO dataset that train.py
fine-tunes on directly (`python train.py --data data/collected/data.yaml --weights weights/best.pt`).

The dataset is in ultralytics' layout with names '0'..'9':
    collected/data.yaml
    collected/images/train/page-20261121-143005-3f9a1c2e.jpg   collected/labels/train/page-...-3f9a1c2e.txt
    collected/images/val/...                                     collected/labels/val/...
Every fifth page goes to val (train.py measures the model on val every epoch); until val has a page, data.yaml's
val points at the train images, so even one saved page can be trained on.

Nothing a client sends names a file: names are made here from the time and a random token. An upload is checked
before it is decoded (size in bytes, format from its content, pixel count), and a refused one changes nothing.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from digitdet.atomic import replaced
from digitdet.boxes import as_boxes, to_yolo
from digitdet.images import MAX_PIXELS, ImageReadError, ImageTooLargeError, read_header, read_image
from digitdet.labels import DIGITS, IMAGE_SUFFIXES, Label, write_data_yaml, write_labels

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a phone photo is 2-12 MB
FORMATS = {"JPEG", "PNG", "BMP", "TIFF", "WEBP", "MPO"}  # what both PIL and OpenCV read (MPO: a phone's JPEG)
VAL_EVERY = 5  # every fifth saved page goes to val
JPEG_QUALITY = 95
_save_lock = threading.Lock()  # one save at a time: the split choice and data.yaml depend on what is already there


class UploadError(ValueError):
    """An upload that is refused; the message says why, in words for the person who sent it."""


class CorrectionError(ValueError):
    """A corrections table that cannot be saved; the message names the row at fault."""


def read_upload(path: str | Path, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An uploaded file as upright 8-bit BGR pixels (as detect.py reads files), or an UploadError.

    The checks run cheapest first and before decoding: size in bytes, format from the file's content (its name is
    the client's and is not trusted), and the pixel count from the header; then read_image's own rules (the same
    pixel limit, damaged data found by decoding)."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise UploadError(f"the file is {size_text(size)}; the limit is {size_text(max_bytes)}")
    if size == 0:
        raise UploadError("the file is empty")
    try:
        header = read_header(path, max_pixels)
    except ImageTooLargeError as error:
        raise UploadError(too_many_pixels(error.width, error.height, max_pixels)) from None
    if header is None:
        raise UploadError("the file is not an image (JPEG, PNG, BMP, TIFF or WebP)")
    if header.kind not in FORMATS:
        raise UploadError(f"{header.kind} images are not supported; send a JPEG, PNG, BMP, TIFF or WebP")
    try:
        return read_image(path, max_pixels)
    except ImageReadError:
        raise UploadError(f"the {header.kind} image is damaged or incomplete and cannot be used") from None


def size_text(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 1024:.1f} KB"


def check_pixels(width: int, height: int, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse images with no pixels or more than `max_pixels` (camera and canvas images are checked here too)."""
    if width < 1 or height < 1:
        raise UploadError("the image has no pixels")
    if width * height > max_pixels:
        raise UploadError(too_many_pixels(width, height, max_pixels))


def too_many_pixels(width: int | None, height: int | None, max_pixels: int) -> str:
    if width is None:  # beyond PIL's own limit, which does not give the size
        return f"the image has far more than {max_pixels / 1e6:g} megapixels"
    return f"the image is {width} x {height} pixels; the limit is {max_pixels / 1e6:g} megapixels"


def corrected_classes(rows: list[list], count: int) -> dict[int, int]:
    """The digits to keep and their classes, from the rows of the corrections table: {digit number: class}.

    Each row is [digit number (1..count), digit, keep, ...]; a row whose keep is unticked, or a deleted row, drops
    that digit's box.
    """
    kept: dict[int, int] = {}
    seen: set[int] = set()
    for row_number, row in enumerate(rows, start=1):
        if not row or all(cell in ("", None) for cell in row):
            continue  # an empty row added in the table's editor
        number, digit, keep = row[0], str(row[1]).strip(), row[2]
        try:
            number = int(float(number))
        except (TypeError, ValueError):
            raise CorrectionError(f"row {row_number}: '#' is {number!r}, not a digit number") from None
        if not 1 <= number <= count:
            raise CorrectionError(f"row {row_number}: there is no digit #{number} (the digits are #1 to #{count})")
        if number in seen:
            raise CorrectionError(f"row {row_number}: digit #{number} appears twice")
        seen.add(number)
        if keep in (False, "false", "False", 0, "0"):
            continue
        if digit not in DIGITS:
            raise CorrectionError(f"row {row_number} (digit #{number}): the digit must be one of 0-9, not "
                                  f"{digit!r}; untick 'keep' to drop a box that is not a digit")
        kept[number] = int(digit)
    return kept


@dataclass
class SavedPage:
    image: Path  # its label file is digitdet.labels.label_path(image)
    split: str
    boxes: int


def page_labels(boxes: np.ndarray, classes: list[int], width: int, height: int) -> list[Label]:
    """YOLO labels (normalized centre and size) of pixel boxes x1, y1, x2, y2 in an image of width x height."""
    boxes = np.clip(as_boxes(boxes), 0, [width, height, width, height])
    inside = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return [Label.from_box(int(cls), *box) for cls, box, keep in zip(classes, to_yolo(boxes, width, height), inside)
            if keep]


def new_page_name() -> str:
    """A file stem made by the server: sortable by time, unique by a random token."""
    return f"page-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"


def count_images(folder: Path) -> int:
    return sum(1 for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else 0


def write_dataset_yaml(root: Path) -> Path:
    """root/data.yaml for the pages saved so far; val is the train images until val has a page of its own."""
    val = "images/val" if count_images(root / "images" / "val") else "images/train"
    path = root / "data.yaml"
    with replaced(path) as temporary:
        write_data_yaml(temporary, root, DIGITS, {"train": "images/train", "val": val})
    return path


def save_page(root: str | Path, image: np.ndarray, boxes: np.ndarray, classes: list[int]) -> SavedPage:
    """Save a BGR page and its digit boxes (pixels, with their classes) into the dataset at `root`.

    The label file is renamed into place before the image, so an interrupted save leaves a label file without an
    image (which `python -m digitdet.labels check` reports), never an image that silently claims to have no digits.
    """
    root = Path(root).resolve()
    height, width = image.shape[:2]
    labels = page_labels(boxes, classes, width, height)
    with _save_lock:
        train = count_images(root / "images" / "train")
        val = count_images(root / "images" / "val")
        split = "val" if (train + val + 1) % VAL_EVERY == 0 else "train"
        stem = new_page_name()
        image_path = root / "images" / split / f"{stem}.jpg"
        label_path = root / "labels" / split / f"{stem}.txt"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        label_path.parent.mkdir(parents=True, exist_ok=True)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise OSError(f"{image_path}: the image could not be encoded as JPEG")
        # the inner block ends first: the label file is renamed into place, then the image
        with replaced(image_path) as image_part, replaced(label_path) as label_part:
            image_part.write_bytes(encoded.tobytes())
            write_labels(label_part, labels)
        write_dataset_yaml(root)
    return SavedPage(image_path, split, len(labels))
