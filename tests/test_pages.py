"""Page builder: tight boxes around each digit's ink, labels that agree with the sidecars, disjoint splits, a seed
that fixes every byte, and photo effects that move boxes with the ink."""

import json
import shutil

import albumentations as A
import cv2
import numpy as np
import pytest

from augment import pages, photo
from digitdet import mnist
from digitdet.labels import Label, load_dataset, label_path, numbers_path, read_labels, require_valid

SPLIT_SOURCES = {"train": ("train", 0, 50_000), "val": ("train", 50_000, 60_000), "test": ("test", 0, 10_000)}


@pytest.fixture(scope="module")
def pools(mnist_dir):
    return mnist.load_pools(mnist_dir)


@pytest.fixture(scope="module")
def layouts(pools):
    """Planned 640 x 640 pages, before rendering."""
    return [pages.plan_page(pages.page_rng(7, "train", i), pools["train"], 640) for i in range(40)]


def all_digits(layout):
    return [d for n in layout.numbers for d in n.digits]


def page_files(yaml_path):
    dataset = load_dataset(yaml_path)
    return [(split, image) for split in dataset.splits for image in dataset.images(split)]


def test_tiny_pages_form_a_valid_dataset(tiny_pages):
    dataset = load_dataset(tiny_pages)
    summaries = require_valid(dataset)
    assert dataset.root == tiny_pages.parent and dataset.names == [str(d) for d in range(10)]
    assert {split: s.images for split, s in summaries.items()} == {"train": 12, "val": 4, "test": 4}
    assert sum(s.boxes for s in summaries.values()) > 100
    for _, image in page_files(tiny_pages):
        assert cv2.imread(str(image)).shape == (320, 320, 3)
        assert numbers_path(image).is_file()


def test_sidecars_agree_with_labels(tiny_pages):
    for _, image in page_files(tiny_pages):
        record = json.loads(numbers_path(image).read_text())
        assert (record["image"], record["width"], record["height"]) == (image.name, 320, 320)
        labels = read_labels(label_path(image), 10)
        digit_boxes = np.array([b for n in record["numbers"] for b in n["digit_boxes"]]).reshape(-1, 4)
        assert "".join(n["digits"] for n in record["numbers"]) == "".join(str(label.cls) for label in labels)
        label_boxes = np.array([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] for cx, cy, w, h in
                                (label.box for label in labels)]).reshape(-1, 4) * 320
        np.testing.assert_allclose(label_boxes, digit_boxes, atol=0.006)  # the sidecar rounds to 0.01 px
        assert (digit_boxes >= 0).all() and (digit_boxes <= 320).all()
        assert (digit_boxes[:, 2:] > digit_boxes[:, :2]).all()
        for number in record["numbers"]:
            boxes = np.array(number["digit_boxes"])
            assert len(number["digits"]) == len(boxes) == len(number["mnist"])
            assert number["box"] == [*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0)]


def test_splits_use_disjoint_mnist_digits(tiny_pages):
    used = {}
    for split, image in page_files(tiny_pages):
        record = json.loads(numbers_path(image).read_text())
        used.setdefault(split, set()).update(s for n in record["numbers"] for s in n["mnist"])
    for split, sources in used.items():
        source, start, stop = SPLIT_SOURCES[split]
        assert sources and all(s.split(":")[0] == source and start <= int(s.split(":")[1]) < stop for s in sources)


def test_same_seed_same_files_with_any_workers(tmp_path, mnist_dir, monkeypatch):
    counts = {"train": 12, "val": 4, "test": 4}
    serial = pages.run(mnist_dir, tmp_path / "serial", counts=counts, size=320, seed=0, workers=1, progress=False)
    monkeypatch.setattr(pages, "CHUNK", 5)  # other chunks, spread over two processes
    monkeypatch.setattr(pages, "MIN_PAGES_PER_WORKER", 1)
    again = pages.run(mnist_dir, tmp_path / "again", counts={"train": 12, "val": 4, "test": 4}, size=320, seed=0,
                      workers=2, progress=False)
    other = pages.run(mnist_dir, tmp_path / "other", counts={"train": 2}, size=320, seed=1, workers=1,
                      progress=False)
    first = sorted(p.relative_to(serial.parent) for p in serial.parent.rglob("*") if p.is_file())
    assert first == sorted(p.relative_to(again.parent) for p in again.parent.rglob("*") if p.is_file())
    for relative in first:
        if relative.name != "data.yaml":  # it names its own folder
            assert (serial.parent / relative).read_bytes() == (again.parent / relative).read_bytes(), relative
    image = "images/train/000000.jpg"
    assert (serial.parent / image).read_bytes() != (other.parent / image).read_bytes()


def test_digit_boxes_are_tight_and_contain_everything_the_digit_draws(layouts):
    checked = 0
    for layout in layouts[:8]:
        page = pages.render(layout).astype(int)
        for number in layout.numbers[:8]:  # each check renders the page again: a sample of each page's digits
            for digit in number.digits[:2]:
                kept = [pages.Number([d for d in n.digits if d is not digit], n.ink) for n in layout.numbers]
                without = pages.render(pages.Layout(**{**vars(layout), "numbers": kept})).astype(int)
                changed = np.argwhere((page != without).any(axis=2))
                (y1, x1), (y2, x2) = changed.min(axis=0), changed.max(axis=0) + 1
                assert (x1, y1, x2, y2) == digit.box  # nothing drawn outside the box, and its edges are drawn on
                ink = digit.ink
                assert ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any()  # each edge touches ink
                assert (page != without)[digit.y: digit.y + ink.shape[0], digit.x: digit.x + ink.shape[1]][ink].all()
                hull = cv2.convexHull(cv2.findNonZero(ink.view(np.uint8))).reshape(-1, 2)
                assert sorted(map(tuple, digit.hull.tolist())) == sorted(map(tuple, hull.tolist()))
                assert photo.outline_boxes(*photo.outlines([digit.hull], [(digit.x, digit.y)])).tolist() == [
                    list(digit.box)]
                checked += 1
    assert checked > 40


def test_ink_is_dark_on_light_paper(layouts):
    for layout in layouts[:6]:
        grey = pages.render(layout).astype(float).mean(axis=2)
        paper = np.median(grey)
        assert paper > 150
        for digit in all_digits(layout):
            x1, y1, x2, y2 = digit.box
            assert grey[y1:y2, x1:x2][digit.ink].mean() < paper - 30


def test_page_contents_vary_like_handwriting(layouts):
    digits = [d for layout in layouts for d in all_digits(layout)]
    heights = np.array([d.coverage.shape[0] for d in digits])
    assert 9 <= heights.min() < 20 and 80 < heights.max() <= 150  # about 12 to 120 pixels on a 640 page
    lengths = {len(n.digits) for layout in layouts for n in layout.numbers}
    assert lengths == set(range(1, 9))
    touching = [a for layout in layouts for n in layout.numbers for a, b in zip(n.digits, n.digits[1:])
                if a.box[2] >= b.box[0]]
    assert touching
    assert sum(bool(layout.texts) for layout in layouts) > 5 and sum(bool(layout.rules) for layout in layouts) > 5
    assert sum(bool(layout.strokes) for layout in layouts) > 5
    assert len({d.cls for d in digits}) == 10


def test_blank_pages_have_no_digits(monkeypatch, pools):
    monkeypatch.setattr(pages, "BLANK_PAGES", 1.0)
    image, numbers, boxes = pages.make_page(pages.page_rng(0, "test", 0), pools["test"], 320)
    assert numbers == [] and len(boxes) == 0 and image.shape == (320, 320, 3)
    assert pages.page_record("000000.jpg", 320, numbers, boxes)["numbers"] == []


def test_draw_draws_what_rng_choice_draws():
    odds = (0.5, 0.2, 0.3)
    for seed in range(200):
        choice = np.random.default_rng(seed).choice(len(odds), p=odds)
        assert pages.draw(np.random.default_rng(seed), odds) == choice


def test_random_words_have_2_to_9_letters_and_some_capitals():
    rng = np.random.default_rng(0)
    words = [pages.random_word(rng) for _ in range(2000)]
    assert {len(w) for w in words} == set(range(2, 10))
    assert all(w[1:].islower() and w.isalpha() for w in words)
    assert 0.26 < np.mean([w[0].isupper() for w in words]) < 0.34
    assert set("".join(words).lower()) == set(pages.LETTERS)


def test_large_digits_are_enlarged_as_one_cubic_warp_would(pools):
    """Large digits are resized, then warped (ten times faster than one cubic warp). Upright and unslanted, the
    warp is a scale with the 2-pixel border; a half-pixel slip between the steps would more than double the gaps."""
    for image in pools["test"].images[:10]:
        x, y, w, h = cv2.boundingRect(image)
        scale = 100 / h
        patch = pages.enlarge(image, 100, 0, 0).astype(int)
        warped = cv2.warpAffine(image[y: y + h, x: x + w], np.float32([[scale, 0, 2], [0, scale, 2]]),
                                patch.shape[::-1], flags=cv2.INTER_CUBIC).astype(int)
        assert np.abs(patch - warped).mean() < 4
        assert ((patch >= 128) != (warped >= 128)).sum() < 0.05 * (warped >= 128).sum()


def make_number(x, y, width=20, height=30):
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.int32)
    digit = pages.Digit(1, "train:0", x, y, np.ones((height, width), np.float32), 1.0, corners)
    return pages.Number([digit], pages.INKS[0])


def test_reading_order_is_by_line_then_left_to_right():
    line_1 = [make_number(300, 100), make_number(50, 106), make_number(180, 95)]
    line_2 = [make_number(250, 160), make_number(20, 152, height=40)]
    order = pages.reading_order(line_2 + line_1)
    assert [(n.box[0], n.box[1]) for n in order] == [(50, 106), (180, 95), (300, 100), (20, 152), (250, 160)]


@pytest.mark.parametrize("seed", range(4))
def test_photo_geometry_moves_boxes_with_the_ink(layouts, seed):
    layout = layouts[seed]
    image = pages.render(layout)
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
    image = pages.render(layout)
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


def test_label_lines_are_the_yolo_lines_of_the_boxes():
    boxes = np.array([[10, 20, 30, 60], [0.5, 1.25, 320, 100.75]], np.float32)
    lines = pages.yolo_lines([3, 7], boxes, 320)
    assert lines.splitlines()[0] == "3 0.0625 0.125 0.0625 0.125"
    x1, y1, x2, y2 = boxes[1].astype(np.float64) / 320
    assert lines.splitlines()[1] == Label.from_box(7, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1).line()
    assert pages.yolo_lines([], np.zeros((0, 4)), 320) == ""


def test_photograph_keeps_digits_at_the_edge_in_the_photo():
    image = np.full((200, 200, 3), 230, np.uint8)
    corner = np.array([[0, 0], [29, 0], [29, 29], [0, 29]])
    for seed in range(5):
        _, boxes = photo.photograph(image, *photo.outlines([corner], [(0, 0)]), seed)
        assert boxes.min() >= 0 and photo.areas(boxes)[0] >= 0.75 * 30 * 30
    with pytest.raises(ValueError, match="leave a 200 x 200 photo"):
        photo.photograph(image, *photo.outlines([corner], [(-100, -100)]), 0)


def test_cli_writes_pages_and_a_preview(tmp_path, mnist_dir):
    out, preview = tmp_path / "pages", tmp_path / "look.png"
    args = ["--mnist", str(mnist_dir), "--out", str(out), "--train", "5", "--val", "0", "--test", "0", "--size",
            "160", "--workers", "1", "--preview", str(preview)]
    assert pages.main(args) == 0
    assert len(list((out / "images" / "train").glob("*.jpg"))) == 5 and not (out / "images" / "val").exists()
    assert cv2.imread(str(preview)).shape == (2 * 400, 4 * 400, 3)  # 5 pages: two rows of four tiles
    assert pages.main(args) == 1  # the folder exists and --overwrite was not given
    assert len(list((out / "images" / "train").glob("*.jpg"))) == 5


def test_bad_mnist_folder_is_named_and_nothing_is_written(tmp_path):
    with pytest.raises(mnist.MnistError, match="train-images-idx3-ubyte.gz: MNIST file not found"):
        pages.run(tmp_path / "empty", tmp_path / "pages", counts={"train": 2}, progress=False)
    assert not (tmp_path / "pages").exists()


def test_output_never_replaces_the_mnist_folder(tmp_path, mnist_dir):
    source = tmp_path / "data" / "mnist"
    shutil.copytree(mnist_dir, source)
    with pytest.raises(ValueError, match="would contain the source"):
        pages.run(source, tmp_path / "data", counts={"train": 1}, overwrite=True, progress=False)
    assert sorted(p.name for p in source.iterdir()) == sorted(p.name for p in mnist_dir.iterdir())
