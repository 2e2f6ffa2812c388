"""The preview sheet: pages with their number and digit boxes drawn, for a person to check."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from digitdet.boxes import from_yolo
from digitdet.images import read_image
from digitdet.labels import DIGITS, SPLITS, DatasetError, Label, label_path, numbers_path, read_labels

CLOSE_UP_TILES = 0.25  # of the sheet's tiles kept for close-ups, which are rarer than pages
BACKGROUND = 114  # the grey around a tile's image, as ultralytics' letterbox pads


def draw_page(image: np.ndarray, labels: list[Label], record: dict, side: int) -> np.ndarray:
    """An image fitted into a `side` x `side` tile with its number boxes (orange) and digit boxes and classes
    (green)."""
    height, width = image.shape[:2]
    scale = side / max(width, height)
    fitted = cv2.resize(image, (max(round(width * scale), 1), max(round(height * scale), 1)),
                        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tile = np.full((side, side, 3), BACKGROUND, np.uint8)
    tile[:fitted.shape[0], :fitted.shape[1]] = fitted
    for number in record["numbers"]:
        x1, y1, x2, y2 = (int(round(v * scale)) for v in number["box"])
        cv2.rectangle(tile, (x1 - 2, y1 - 2), (x2 + 2, y2 + 2), (0, 140, 255), 1)
    for label in labels:
        x1, y1, x2, y2 = (int(round(v * scale)) for v in from_yolo([label.box], width, height)[0])
        cv2.rectangle(tile, (x1, y1), (x2, y2), (0, 200, 0), 1)
        cv2.putText(tile, DIGITS[label.cls], (x1, max(y1 - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 230), 1,
                    cv2.LINE_AA)
    return tile


def choose(out_dir: Path, count: int) -> list[tuple[Path, dict]]:
    """The first `count` images (train first) with their sidecars: a quarter of them close-ups where there are some,
    the rest pages; in their order."""
    quota = {"close-up": int(CLOSE_UP_TILES * count), "page": count}
    found = {"close-up": [], "page": []}
    images = (p for split in SPLITS for p in sorted((out_dir / "images" / split).glob("*.jpg")))
    for order, image in enumerate(images):
        record = json.loads(numbers_path(image).read_text())
        kind = "close-up" if record.get("kind") == "close-up" else "page"
        if len(found[kind]) < quota[kind]:
            found[kind].append((order, image, record))
        if all(len(found[k]) == quota[k] for k in quota):
            break
    close_ups = found["close-up"]
    return [(image, record) for _, image, record in sorted(close_ups + found["page"][:count - len(close_ups)])]


def write_preview(out_dir: Path, path: Path, count: int = 16, side: int = 400) -> Path:
    """A contact sheet, four tiles a row, of images with their boxes and digits (`choose`), for a person to check."""
    chosen = choose(out_dir, count)
    if not chosen:
        raise DatasetError(f"{out_dir}: no pages to preview")
    tiles = [draw_page(read_image(p), read_labels(label_path(p), len(DIGITS)), record, side) for p, record in chosen]
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % 4)
    sheet = np.vstack([np.hstack(tiles[i: i + 4]) for i in range(0, len(tiles), 4)])
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), sheet):
        raise OSError(f"{path}: could not write the preview")
    return path
