"""Photo effects for rendered pages (albumentations): a slightly tilted, unevenly lit, blurred, noisy JPEG photo.

Boxes follow the geometry through albumentations as keypoints: the corners of each digit's ink outline (its convex
hull). The box of the moved outline is the box of the moved ink, so boxes stay tight after rotation and
perspective; moving only a box's four corners would loosen it by up to the box's size times sin(angle).
"""

from __future__ import annotations

import sys
from functools import lru_cache

import cv2
import numpy as np

from digitdet import runtime

runtime.setup()  # before albumentations, whose import otherwise asks PyPI for a newer version
# Pages never reach albumentations as tensors: skipping its optional PyTorch adapters (it imports them under
# suppress(ImportError)) keeps torch out of page workers, whose start-up falls from about 5 s to 1 s.
sys.modules.setdefault("albumentations.pytorch", None)
import albumentations as A  # noqa: E402

ROTATION = 3.0  # degrees either way; a page photographed by hand, not a rotated page (augment.rotate does that)
PERSPECTIVE = (0.005, 0.02)  # albumentations' corner displacement scale, a fraction of the page side
TRIES = 20
KEYPOINTS = A.KeypointParams(format="xy", remove_invisible=False)  # outline corners may leave the photo
PIXEL_CORNERS = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]], np.float32)


def geometry() -> list[A.BasicTransform]:
    """A hand-held camera: slight perspective and tilt. No flips: digits are not mirror-symmetric."""
    return [
        A.Perspective(scale=PERSPECTIVE, border_mode=cv2.BORDER_REPLICATE, p=0.4),
        A.Affine(rotate=(-ROTATION, ROTATION), border_mode=cv2.BORDER_REPLICATE, p=0.7),
    ]


@lru_cache(maxsize=None)
def pipeline() -> A.Compose:
    """The photo effects, built once per process."""
    light = [
        A.RandomBrightnessContrast(brightness_limit=(-0.25, 0.15), contrast_limit=(-0.35, 0.1), p=0.8),
        A.RandomShadow(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 2), shadow_dimension=5,
                       shadow_intensity_range=(0.05, 0.2), p=0.1),
        A.RandomGamma(gamma_limit=(80, 125), p=0.3),
    ]
    camera = [  # the cheap ones of albumentations' blurs and noises: pages are made by the thousand
        A.OneOf([A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.2)),
                 A.MotionBlur(blur_limit=(3, 5), allow_shifted=False),
                 A.Downscale(scale_range=(0.5, 0.8))], p=0.4),
        A.GaussNoise(std_range=(0.01, 0.05), per_channel=False, p=0.3),
        A.ImageCompression(quality_range=(40, 95), p=0.3),
    ]
    return A.Compose(geometry() + light + camera, keypoint_params=KEYPOINTS)


def outline(ink: np.ndarray, x: int, y: int) -> np.ndarray:
    """Page coordinates (pixel-centre convention, as OpenCV warps) of the corners of an ink mask's hull pixels.

    `ink` is a digit's boolean ink mask placed with its top-left pixel at page pixel (x, y).
    """
    hull = cv2.convexHull(cv2.findNonZero(ink.astype(np.uint8))).reshape(-1, 1, 2).astype(np.float32)
    return (hull + PIXEL_CORNERS).reshape(-1, 2) + np.float32([x, y])


def outline_box(points: np.ndarray) -> np.ndarray:
    """The pixel-edge box (x1, y1, x2, y2) around outline points: the outer edges of the extreme pixels."""
    return np.concatenate([points.min(axis=0), points.max(axis=0)]) + 0.5


def photograph(image: np.ndarray, outlines: list[np.ndarray], seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Apply the photo effects to an RGB page; return it and each outline's box, clipped to the page.

    In the rare draw whose perspective pushes a quarter or more of some digit's box off the photo, the next seed
    is tried, so that every label stays a digit one can see; outlines that no draw keeps on the photo are an error.
    """
    transform = pipeline()
    height, width = image.shape[:2]
    limits = np.array([width, height, width, height], np.float32)
    splits = np.cumsum([len(points) for points in outlines])[:-1]
    points = np.concatenate(outlines) if outlines else np.zeros((0, 2), np.float32)
    for seed in range(seed, seed + TRIES):
        transform.set_random_seed(seed)
        result = transform(image=image, keypoints=points)
        moved = np.split(np.asarray(result["keypoints"], np.float32).reshape(-1, 2), splits) if outlines else []
        boxes = [outline_box(p) for p in moved]
        clipped = [np.clip(box, 0, limits) for box in boxes]
        if all(area(c) >= 0.75 * area(b) for b, c in zip(boxes, clipped)):
            return result["image"], clipped
    raise ValueError(f"some outlines leave a {width} x {height} photo in {TRIES} tries: keep them off its edges")


def area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0) * max(box[3] - box[1], 0))
