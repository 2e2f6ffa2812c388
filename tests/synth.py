"""Small YOLO datasets made on the fly for tests, in either layout users have."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from digitdet.boxes import to_yolo

DIGITS = [str(d) for d in range(10)]


def rectangle_image(width: int, height: int, box_px: tuple[int, int, int, int], value: int = 0) -> np.ndarray:
    """A white BGR image with one filled rectangle covering pixels x1..x2-1, y1..y2-1."""
    image = np.full((height, width, 3), 255, np.uint8)
    x1, y1, x2, y2 = box_px
    image[y1:y2, x1:x2] = value
    return image


def box_line(cls: int, box_px: tuple[int, int, int, int], width: int, height: int) -> str:
    """A YOLO label line (every digit of each float) for a pixel box x1, y1, x2, y2 of a width x height image."""
    cx, cy, w, h = to_yolo([box_px], width, height)[0].tolist()
    return f"{cls} {cx} {cy} {w} {h}"


def make_dataset(root: Path, splits: dict[str, list[tuple[str, np.ndarray, list[str] | None]]],
                 layout: str = "ultralytics", names=None) -> Path:
    """Write images and label lines (None: no label file) in `layout`; return the data.yaml path."""
    folders = {}
    for split, items in splits.items():
        folder = split if layout == "ultralytics" else {"val": "valid"}.get(split, split)
        images = root / ("images/" + folder if layout == "ultralytics" else folder + "/images")
        labels = root / ("labels/" + folder if layout == "ultralytics" else folder + "/labels")
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        for name, image, lines in items:
            cv2.imwrite(str(images / name), image)
            if lines is not None:
                (labels / Path(name).with_suffix(".txt")).write_text("\n".join(lines) + "\n")
        folders[split] = f"images/{folder}" if layout == "ultralytics" else f"../{folder}/images"
    config = {**folders, "nc": 10, "names": names if names is not None else DIGITS}
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
