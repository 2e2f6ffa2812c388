"""Quarter turns of an image together with its points and boxes, so that labels always move with the pixels.

A turn is counter-clockwise, in degrees: one of TURNS. Turning a W x H image by 90 gives an H x W image and moves
pixel (x, y) to (y, W - x); turning back from turn t is the turn (360 - t) % 360. A quarter turn maps an
axis-aligned box onto an axis-aligned box, so boxes are turned exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

from digitdet.boxes import as_boxes

TURNS = (0, 90, 180, 270)  # counter-clockwise quarter turns
CV2_TURNS = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


def check_turns(turns, what: str = "turns") -> None:
    """A ValueError unless every one of `turns` is a quarter turn."""
    if bad := [t for t in turns if t not in TURNS]:
        raise ValueError(f"{what} must be among {TURNS}, got {bad}")


def back(turn: int) -> int:
    """The turn that undoes `turn`."""
    return (360 - turn) % 360


def turn_image(image: np.ndarray, turn: int) -> np.ndarray:
    """The image turned `turn` degrees counter-clockwise (the same array for 0)."""
    return image if turn == 0 else cv2.rotate(image, CV2_TURNS[turn])


def turn_points(points: np.ndarray, turn: int) -> np.ndarray:
    """Normalized (x, y) points of an image turned `turn` degrees counter-clockwise.

    Pixel (x, y) of W x H pixels moves to (y, W - x) at 90; in normalized coordinates that is (u, v) -> (v, 1 - u),
    independent of W and H.
    """
    u, v = points[:, 0], points[:, 1]
    turned = {0: (u, v), 90: (v, 1 - u), 180: (1 - u, 1 - v), 270: (1 - v, u)}
    if turn not in turned:
        raise ValueError(f"turn must be one of {TURNS}, got {turn}")
    return np.stack(turned[turn], axis=1)


def turned_size(width: int, height: int, turn: int) -> tuple[int, int]:
    """(width, height) of a width x height image after a quarter turn."""
    return (height, width) if turn in (90, 270) else (width, height)


def turn_boxes(boxes: np.ndarray, turn: int, width: int, height: int) -> np.ndarray:
    """Pixel boxes (N, 4) x1, y1, x2, y2 of a width x height image, in the pixels of that image turned `turn`."""
    boxes = as_boxes(boxes)
    new_w, new_h = turned_size(width, height, turn)
    corners = [turn_points(boxes[:, [i, j]] / [width, height], turn) * [new_w, new_h] for i, j in ((0, 1), (2, 3))]
    return np.concatenate([np.minimum(*corners), np.maximum(*corners)], axis=1)


def upright_boxes(boxes: np.ndarray, turn: int, width: int, height: int) -> np.ndarray:
    """Boxes of a width x height page at `turn`, in the pixels of the page turned back upright."""
    return turn_boxes(boxes, back(turn), width, height)
