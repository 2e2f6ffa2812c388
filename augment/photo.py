"""Photo effects for rendered pages (albumentations): a slightly tilted, unevenly lit, blurred, noisy JPEG photo.

Boxes follow the geometry through albumentations as keypoints: the corners of each digit's ink outline (its convex
hull). The box of the moved outline is the box of the moved ink, so boxes stay tight after rotation and
perspective; moving only a box's four corners would loosen it by up to the box's size times sin(angle).
"""

from __future__ import annotations

import random
import sys
from contextlib import contextmanager
from functools import lru_cache

import cv2
import numpy as np


@contextmanager
def missing(*modules: str):
    """Imports inside see `modules` as not installed (unless already imported); later imports find them again."""
    absent = [name for name in modules if name not in sys.modules]
    sys.modules.update(dict.fromkeys(absent, None))
    try:
        yield
    finally:
        for name in absent:
            sys.modules.pop(name, None)


# Two optional parts of albumentations that pages never use, which it imports only if they are installed: its PyTorch
# adapters (under suppress(ImportError)) and huggingface_hub for Compose's hub methods (under except ImportError).
# Without them a page worker starts in about 1 s instead of 5 s (torch), and 0.15 s sooner again (huggingface_hub).
with missing("albumentations.pytorch", "huggingface_hub"):
    import albumentations as A
    from albumentations.augmentations.pixel import functional as pixel_functions

ROTATION = 3.0  # degrees either way; a page photographed by hand, not a rotated page (augment.rotate does that)
PERSPECTIVE = (0.005, 0.02)  # albumentations' corner displacement scale, a fraction of the page side
TRIES = 20
KEYPOINTS = A.KeypointParams(format="xy", remove_invisible=False)  # outline corners may leave the photo
IDENTITY = np.eye(3)
PIXEL_CORNERS = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]], np.float32)


def geometry() -> list[A.BasicTransform]:
    """A hand-held camera: slight perspective and tilt. No flips: digits are not mirror-symmetric."""
    return [HandHeld(scale=PERSPECTIVE, border_mode=cv2.BORDER_REPLICATE, p=1.0)]


class HandHeld(A.Perspective):
    """albumentations' Perspective (drawn as it draws) with probability `perspective_p`, then a turn of up to
    `rotation` degrees about the centre (as A.Affine turns) with probability `tilt_p`, in one warp: a warp of a 640
    page costs about 1.5 ms, and two in a row blur twice."""

    perspective_p, tilt_p, rotation = 0.4, 0.7, ROTATION

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict:
        height, width = params["shape"][:2]
        matrix = np.eye(3)
        if self.py_random.random() < self.perspective_p:
            drawn = super().get_params_dependent_on_data(params, data)
            # Perspective warps to its own size, then scales to the page's (keep_size): one matrix for both
            matrix = np.diag([width / drawn["max_width"], height / drawn["max_height"], 1]) @ drawn["matrix"]
        if self.py_random.random() < self.tilt_p:
            centre, angle = (width / 2 - 0.5, height / 2 - 0.5), self.py_random.uniform(-self.rotation, self.rotation)
            matrix = np.vstack([cv2.getRotationMatrix2D(centre, angle, 1), [0, 0, 1]]) @ matrix
        return {"matrix": matrix, "matrix_bbox": matrix, "max_width": width, "max_height": height}

    def apply(self, img: np.ndarray, matrix: np.ndarray, **params) -> np.ndarray:
        if np.array_equal(matrix, IDENTITY):
            return img
        if img.ndim == 3 and img.shape[2] == 3:  # OpenCV warps 4 channels about twice as fast as 3, same RGB
            return cv2.cvtColor(super().apply(cv2.cvtColor(img, cv2.COLOR_RGB2RGBA), matrix, **params),
                                cv2.COLOR_RGBA2RGB)
        return super().apply(img, matrix, **params)

    def apply_to_keypoints(self, keypoints: np.ndarray, matrix: np.ndarray, **params) -> np.ndarray:
        if np.array_equal(matrix, IDENTITY):
            return keypoints
        return super().apply_to_keypoints(keypoints, matrix, **params)


class Shadow(A.RandomShadow):
    """albumentations' RandomShadow, drawn as it draws and with the same pixels, darkened through a lookup table
    under each shadow's mask: its own apply indexes the page with a boolean mask (about 7 ms on a 640 page)."""

    def apply(self, img: np.ndarray, vertices_list: list[np.ndarray], intensities: np.ndarray, **params) -> np.ndarray:
        shadowed = img.copy()
        for vertices, intensity in zip(vertices_list, intensities):
            mask = np.zeros(img.shape[:2], np.uint8)
            cv2.fillPoly(mask, [vertices], 255)
            darker = cv2.LUT(shadowed, (np.arange(256) * (1 - intensity)).astype(np.uint8))
            shadowed = cv2.copyTo(darker, mask, shadowed)
        return shadowed


class Noise(A.GaussNoise):
    """albumentations' GaussNoise with per_channel=False, drawn as it draws and with the same pixels, for uint8 grey
    or RGB images: one noise plane for all channels instead of its three equal ones, added as albumentations adds it
    (each value truncated to whole levels, saturating) with two uint8 saturating operations, not in float32 (about
    3 ms in all on a 640 page, now about 1 ms)."""

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict:
        sigma = self.py_random.uniform(*self.std_range)
        mean = self.py_random.uniform(*self.mean_range)
        plane = pixel_functions.generate_noise("gaussian", "shared", params["shape"][:2],
                                               {"mean_range": (mean, mean), "std_range": (sigma, sigma)}, 255,
                                               self.noise_scale_factor, self.random_generator)
        return {"noise_map": plane}

    def apply(self, img: np.ndarray, noise_map: np.ndarray, **params) -> np.ndarray:
        levels = noise_map.astype(np.int16)  # truncates toward 0; the noise is far inside int16
        up, down = (np.clip(sign * levels, 0, 255).astype(np.uint8) for sign in (1, -1))
        if img.ndim == 3:
            up, down = cv2.cvtColor(up, cv2.COLOR_GRAY2RGB), cv2.cvtColor(down, cv2.COLOR_GRAY2RGB)
        return cv2.subtract(cv2.add(img, up), down)


@lru_cache(maxsize=None)
def pipeline() -> A.Compose:
    """The photo effects, built once per process."""
    light = [
        A.RandomBrightnessContrast(brightness_limit=(-0.25, 0.15), contrast_limit=(-0.35, 0.1), p=0.8),
        Shadow(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 2), shadow_dimension=5,
                       shadow_intensity_range=(0.05, 0.2), p=0.1),
        A.RandomGamma(gamma_limit=(80, 125), p=0.3),
    ]
    camera = [  # the cheap ones of albumentations' blurs and noises: pages are made by the thousand
        A.OneOf([A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.2)),
                 A.MotionBlur(blur_limit=(3, 5), allow_shifted=False),
                 A.Downscale(scale_range=(0.5, 0.8))], p=0.4),
        # noise drawn at half the size (about half the cost) and enlarged: grain of about 2 pixels, as a phone camera's
        # demosaicing leaves; enlarging smooths it to about 0.6 of its std, which the wider range makes up for
        Noise(std_range=(0.016, 0.08), per_channel=False, noise_scale_factor=0.5, p=0.3),
        A.ImageCompression(quality_range=(40, 95), p=0.3),
    ]
    return A.Compose(geometry() + light + camera, keypoint_params=KEYPOINTS)


def outlines(hulls: list[np.ndarray], origins: list[tuple[int, int]]) -> tuple[np.ndarray, list[int]]:
    """Page coordinates (pixel-centre convention, as OpenCV warps) of the corners of each digit's hull pixels, all
    outlines one after the other, and how many points each outline has.

    `hulls[i]` holds the (x, y) pixels on the convex hull of a digit's ink, in a patch placed with its top-left pixel
    at page pixel `origins[i]`. All at once: numpy calls on a page's 70 or so small hulls one by one cost 0.4 ms.
    """
    if not hulls:
        return np.zeros((0, 2), np.float32), []
    counts = [len(hull) for hull in hulls]
    pixels = np.concatenate(hulls) + np.repeat(np.asarray(origins, np.int32).reshape(-1, 2), counts, axis=0)
    return (pixels[:, None] + PIXEL_CORNERS).reshape(-1, 2), [4 * count for count in counts]


def outline_boxes(points: np.ndarray, sizes: list[int]) -> np.ndarray:
    """The pixel-edge boxes (x1, y1, x2, y2), one row per outline, of outlines of `sizes` points each, one after
    the other in `points`: the outer edges of their extreme pixels."""
    if not sizes:
        return np.zeros((0, 4), np.float32)
    starts = np.cumsum([0, *sizes[:-1]])
    return np.hstack([np.minimum.reduceat(points, starts), np.maximum.reduceat(points, starts)]) + np.float32(0.5)


def photograph(image: np.ndarray, points: np.ndarray, sizes: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply the photo effects to an RGB page; return it and the box (a row) of each outline, of `sizes` points each
    one after the other in `points`, clipped to the page.

    In the rare draw whose perspective pushes a quarter or more of some digit's box off the photo, the next seed
    is tried, so that every label stays a digit one can see; outlines that no draw keeps on the photo are an error.
    """
    transform = pipeline()
    height, width = image.shape[:2]
    limits = np.array([width, height, width, height], np.float32)
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
