"""Photo effects for rendered pages (albumentations): a slightly tilted, unevenly lit, blurred, noisy JPEG photo.

Boxes follow the geometry through albumentations as keypoints: the corners of each digit's ink outline (its convex
hull). The box of the moved outline is the box of the moved ink, so boxes stay tight after rotation and
perspective; moving only a box's four corners would loosen it by up to the box's size times sin(angle).
"""

from __future__ import annotations

import random
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
        # noise drawn at half the size (about half the cost) and enlarged: grain of about 2 pixels, as a phone camera's
        # demosaicing leaves; enlarging smooths it to about 0.6 of its std, which the wider range makes up for
        A.GaussNoise(std_range=(0.016, 0.08), per_channel=False, noise_scale_factor=0.5, p=0.3),
        A.ImageCompression(quality_range=(40, 95), p=0.3),
    ]
    # OpenCV warps 4-channel images about twice as fast as 3-channel ones, with the same RGB result
    four_channels = [A.Lambda(image=rgba), *geometry(), A.Lambda(image=rgb)]
    return A.Compose(four_channels + light + camera, keypoint_params=KEYPOINTS)


def rgba(image: np.ndarray, **_) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2RGBA)


def rgb(image: np.ndarray, **_) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)


def outline(hull: np.ndarray, x: int, y: int) -> np.ndarray:
    """Page coordinates (pixel-centre convention, as OpenCV warps) of the corners of a digit's hull pixels.

    `hull` holds the (x, y) pixels on the convex hull of the digit's ink, in a patch placed with its top-left pixel at
    page pixel (x, y).
    """
    return (hull[:, None] + (PIXEL_CORNERS + np.float32([x, y]))).reshape(-1, 2)


def joined(outlines: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """The points of all outlines, one after the other, and how many each outline has."""
    return np.concatenate(outlines) if outlines else np.zeros((0, 2), np.float32), [len(o) for o in outlines]


def outline_boxes(points: np.ndarray, sizes: list[int]) -> np.ndarray:
    """The pixel-edge boxes (x1, y1, x2, y2), one row per outline, of outlines of `sizes` points each, one after
    the other in `points`: the outer edges of their extreme pixels."""
    if not sizes:
        return np.zeros((0, 4), np.float32)
    starts = np.cumsum([0, *sizes[:-1]])
    return np.hstack([np.minimum.reduceat(points, starts), np.maximum.reduceat(points, starts)]) + np.float32(0.5)


def photograph(image: np.ndarray, outlines: list[np.ndarray], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply the photo effects to an RGB page; return it and each outline's box (a row), clipped to the page.

    In the rare draw whose perspective pushes a quarter or more of some digit's box off the photo, the next seed
    is tried, so that every label stays a digit one can see; outlines that no draw keeps on the photo are an error.
    """
    transform = pipeline()
    height, width = image.shape[:2]
    limits = np.array([width, height, width, height], np.float32)
    points, sizes = joined(outlines)
    for seed in range(seed, seed + TRIES):
        reseed(transform, seed)
        result = transform(image=image, keypoints=points)
        boxes = outline_boxes(np.asarray(result["keypoints"], np.float32).reshape(-1, 2), sizes)
        clipped = np.clip(boxes, 0, limits)
        if (areas(clipped) >= 0.75 * areas(boxes)).all():
            return result["image"], clipped
    raise ValueError(f"some outlines leave a {width} x {height} photo in {TRIES} tries: keep them off its edges")


def reseed(transform: A.Compose, seed: int) -> None:
    """One random stream from `seed` for all the transforms. (Compose.set_random_seed gives each transform its own
    stream from the same seed: all would draw the same numbers, and their effects would come all together or not at
    all.)"""
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def areas(boxes: np.ndarray) -> np.ndarray:
    """The area of each box (x1, y1, x2, y2) in rows; 0 where it is empty."""
    return (boxes[:, 2:] - boxes[:, :2]).clip(0).prod(axis=1)
