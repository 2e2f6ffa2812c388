"""Photo effects of the page builder (augment/photo.py): boxes move with the ink through tilt and perspective and
stay inside the photo, and each effect gives the pixels of the albumentations transform it stands in for."""

import albumentations as A
import numpy as np
import pytest

from augment import photo
from augment.pages import build, fonts, render, writer


@pytest.fixture(scope="module")
def layouts(mnist_dir):
    """Planned 640 x 640 pages of MNIST digits, before rendering."""
    sources = build.load_sources(mnist_dir, {"train": fonts.Fonts((), ())}, "mnist")["train"]
    return [writer.Writer(build.page_rng(7, "train", i), sources, 640).plan() for i in range(4)]


def all_digits(layout):
    return [d for n in layout.numbers for d in n.digits]


@pytest.mark.parametrize("seed", range(4))
def test_photo_geometry_moves_boxes_with_the_ink(layouts, seed):
    layout = layouts[seed]
    image = render.render(layout)
    digits = all_digits(layout)[:30]
    masks = []
    for digit in digits:
        mask = np.zeros(image.shape[:2], np.uint8)
        x1, y1, x2, y2 = digit.box
        mask[y1:y2, x1:x2] = digit.ink
        masks.append(mask)
    transforms = photo.geometry()
    for transform in transforms:
        transform.perspective_p = transform.tilt_p = 1.0  # both, in the one warp
    camera = A.Compose(transforms, keypoint_params=photo.KEYPOINTS, seed=seed)
    points, sizes = photo.outlines([d.hull for d in digits], [(d.x, d.y) for d in digits])
    result = camera(image=image, masks=masks, keypoints=points)
    boxes = photo.outline_boxes(np.asarray(result["keypoints"], np.float32), sizes)
    for box, mask, digit in zip(boxes, result["masks"], digits):
        ys, xs = np.nonzero(mask)
        ink_box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        # the mask moves by nearest-pixel sampling, which can miss the thin tip of a turned pixel by a little more
        # than a pixel (up to 1.02 pixels on these pages)
        assert np.abs(box - ink_box).max() <= 1.25, (digit.box, box, ink_box)


def test_hand_held_camera_tilts_and_skews_as_often_as_drawn():
    camera = photo.geometry()[0]
    skewed, turned = [], []
    for seed in range(600):
        camera.set_random_seed(seed)
        matrix = camera.get_params_dependent_on_data({"shape": (640, 640, 3)}, {})["matrix"]
        skewed.append(not np.array_equal(matrix[2], [0, 0, 1]))
        if not skewed[-1]:  # no perspective: a turn about the page centre (as A.Affine turns), or nothing
            turned.append(not np.array_equal(matrix, np.eye(3)))
            assert abs(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))) <= camera.rotation
            np.testing.assert_allclose(matrix @ [319.5, 319.5, 1], [319.5, 319.5, 1], atol=1e-9)
    assert abs(np.mean(skewed) - camera.perspective_p) < 0.06 and abs(np.mean(turned) - camera.tilt_p) < 0.07


@pytest.mark.parametrize("seed", range(3))
def test_shadow_gives_the_pixels_of_albumentations_random_shadow(seed):
    image = np.random.default_rng(seed).integers(0, 256, (60, 80, 3), np.uint8)
    shadow = photo.Shadow(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 2), shadow_dimension=5,
                          shadow_intensity_range=(0.05, 0.6), p=1.0)
    shadow.set_random_seed(seed)
    params = shadow.get_params_dependent_on_data({"shape": image.shape}, {"image": image})
    shadowed = shadow.apply(image, **params)
    assert np.array_equal(shadowed, A.RandomShadow.apply(shadow, image, **params))
    assert (shadowed < image).any() and (shadowed <= image).all()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("channels", [3, 1])
def test_noise_gives_the_pixels_of_albumentations_gauss_noise(seed, channels):
    image = np.random.default_rng(seed).integers(0, 256, (61, 83, 3), np.uint8)  # odd sides: enlarged noise
    image = image if channels == 3 else image[..., 0].copy()
    settings = dict(std_range=(0.05, 0.4), per_channel=False, noise_scale_factor=0.5, p=1.0)  # strong: saturates
    pixels = []
    for noise in (photo.Noise(**settings), A.GaussNoise(**settings)):
        photo.reseed(A.Compose([noise]), seed)
        params = noise.get_params_dependent_on_data({"shape": image.shape}, {"image": image})
        pixels.append(noise.apply(image, **params))
    assert np.array_equal(pixels[0], pixels[1]) and pixels[0].shape == image.shape
    assert ((pixels[0] == 0) & (image > 0)).any() and ((pixels[0] == 255) & (image < 255)).any()
    assert np.abs(pixels[0].astype(int) - image).mean() > 5


def test_photograph_keeps_boxes_inside_and_is_repeatable(layouts):
    layout = layouts[0]
    image = render.render(layout)
    digits = all_digits(layout)
    outlines = photo.outlines([d.hull for d in digits], [(d.x, d.y) for d in digits])
    first, boxes = photo.photograph(image, *outlines, seed=3)
    second, boxes_again = photo.photograph(image, *outlines, seed=3)
    assert np.array_equal(first, second) and np.array_equal(boxes, boxes_again)
    assert boxes.shape == (len(digits), 4) and first.shape == image.shape
    assert (boxes >= 0).all() and (boxes <= 640).all() and (boxes[:, 2:] > boxes[:, :2]).all()
    assert not any("Flip" in type(t).__name__ for t in photo.pipeline().transforms)


def test_photo_effects_are_drawn_independently():
    transforms = photo.pipeline().transforms
    camera = A.Compose(transforms, keypoint_params=photo.KEYPOINTS, save_applied_params=True)
    names = [type(t).__name__ for t in transforms]
    applied = []
    for seed in range(400):
        photo.reseed(camera, seed)
        result = camera(image=np.full((32, 32, 3), 200, np.uint8), keypoints=np.zeros((0, 2)))
        applied.append([name in {n for n, _ in result["applied_transforms"]} for name in names])
    rates = dict(zip(names, np.mean(applied, axis=0)))
    both = np.mean([a[names.index("Noise")] and a[names.index("ImageCompression")] for a in applied])
    assert abs(rates["Noise"] - 0.3) < 0.07 and abs(rates["ImageCompression"] - 0.3) < 0.07
    assert both < 0.15  # about 0.3 * 0.3, not 0.3 as when every transform draws the same numbers


def test_outline_boxes_are_the_pixel_edges_of_each_outline():
    points = np.array([[0, 0], [2, 3], [5, 5], [6, 9], [4, 7]], np.float32)
    assert photo.outline_boxes(points, [2, 3]).tolist() == [[0.5, 0.5, 2.5, 3.5], [4.5, 5.5, 6.5, 9.5]]
    square = np.array([[0, 0], [3, 0], [3, 1], [0, 1]])  # a 4 x 2 pixel digit at (10, 20), and one pixel at (0, 5)
    assert photo.outline_boxes(*photo.outlines([square, square[:1]], [(10, 20), (0, 5)])).tolist() == [
        [10, 20, 14, 22], [0, 5, 1, 6]]
    assert photo.outline_boxes(*photo.outlines([], [])).shape == (0, 4)


def test_photograph_keeps_digits_at_the_edge_in_the_photo():
    image = np.full((200, 200, 3), 230, np.uint8)
    corner = np.array([[0, 0], [29, 0], [29, 29], [0, 29]])
    for seed in range(5):
        _, boxes = photo.photograph(image, *photo.outlines([corner], [(0, 0)]), seed)
        assert boxes.min() >= 0 and photo.areas(boxes)[0] >= 0.75 * 30 * 30
    with pytest.raises(ValueError, match="leave a 200 x 200 photo"):
        photo.photograph(image, *photo.outlines([corner], [(-100, -100)]), 0)
