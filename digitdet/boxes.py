"""Box formats and box overlap: pixel corners (x1, y1, x2, y2), YOLO's normalized centre and size, IoU.

The format conversions are the arithmetic of ultralytics' ops.xyxy2xywh and ops.xywh2xyxy, written here in numpy
because importing ultralytics loads torch, which would add seconds to the start of every page-builder worker;
IoU is torchvision's box_iou (imported when first needed, for the same reason).
"""

from __future__ import annotations

import numpy as np


def as_boxes(boxes) -> np.ndarray:
    """(N, 4) float64 boxes from any nested sequence or array of boxes (none: (0, 4))."""
    return np.asarray(boxes, np.float64).reshape(-1, 4)


def xyxy_to_xywh(boxes) -> np.ndarray:
    """Corners (x1, y1, x2, y2) -> centre and size (cx, cy, w, h), as ultralytics' ops.xyxy2xywh."""
    x1, y1, x2, y2 = as_boxes(boxes).T
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1)


def xywh_to_xyxy(boxes) -> np.ndarray:
    """Centre and size (cx, cy, w, h) -> corners (x1, y1, x2, y2), as ultralytics' ops.xywh2xyxy."""
    cx, cy, w, h = as_boxes(boxes).T
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def to_yolo(boxes, width: int, height: int) -> np.ndarray:
    """Pixel corners of a width x height image -> YOLO's normalized (cx, cy, w, h)."""
    return xyxy_to_xywh(as_boxes(boxes) / [width, height, width, height])


def from_yolo(boxes, width: int = 1, height: int = 1) -> np.ndarray:
    """YOLO's normalized (cx, cy, w, h) -> corners, in the pixels of a width x height image (1 x 1: normalized)."""
    return xywh_to_xyxy(boxes) * [width, height, width, height]


def enclosing(boxes) -> tuple:
    """The box (x1, y1, x2, y2) around boxes, in their own number type."""
    x1s, y1s, x2s, y2s = zip(*boxes)
    return min(x1s), min(y1s), max(x2s), max(y2s)


def iou(a, b) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4), as (N, M) float64 (torchvision's box_iou)."""
    import torch
    from torchvision.ops import box_iou

    return box_iou(torch.as_tensor(as_boxes(a)), torch.as_tensor(as_boxes(b))).numpy()


def overlap_of_smaller(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For each of `others` (M, 4), the share of the smaller of it and `box` (4,) that their intersection covers,
    in the arrays' own precision."""
    w = np.minimum(others[:, 2], box[2]) - np.maximum(others[:, 0], box[0])
    h = np.minimum(others[:, 3], box[3]) - np.maximum(others[:, 1], box[1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(np.minimum(areas, (box[2] - box[0]) * (box[3] - box[1])), 1e-9)
