"""Rotation augmenter: exact box arithmetic, pixels under the boxes, EXIF, and nothing lost."""

import hashlib

import cv2
import numpy as np
import pytest
from PIL import Image

from augment import rotate
from digitdet.labels import DatasetError, Label, label_path, load_dataset, read_labels
from digitdet.boxes import from_yolo
from digitdet.turns import TURNS, turn_points
from synth import box_line, make_dataset, rectangle_image

W, H = 64, 48  # not square, so a wrong width/height swap shows
BOXES = [(5, 7, 21, 19), (40, 30, 63, 48)]  # the second touches the right and bottom edges


def random_labels(rng, n=200):
    """Random boxes and polygons inside the unit square."""
    labels = []
    for _ in range(n):
        if rng.random() < 0.5:
            w, h = rng.uniform(0.01, 0.5, 2)
            cx, cy = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
            labels.append(Label.from_box(int(rng.integers(10)), cx, cy, w, h))
        else:
            labels.append(Label(int(rng.integers(10)), rng.uniform(0, 1, (int(rng.integers(3, 9)), 2))))
    return labels


def test_four_quarter_turns_compose_to_the_identity():
    rng = np.random.default_rng(0)
    for label in random_labels(rng):
        turned = label
        for _ in range(4):
            turned = rotate.turn_label(turned, 90)
        np.testing.assert_allclose(turned.points, label.points, atol=1e-9)
        np.testing.assert_allclose(rotate.turn_label(rotate.turn_label(label, 90), 270).points, label.points,
                                   atol=1e-9)
        np.testing.assert_allclose(rotate.turn_label(rotate.turn_label(label, 180), 180).points, label.points,
                                   atol=1e-9)


def test_box_arithmetic_of_each_quarter_turn():
    cx, cy, w, h = 0.2, 0.3, 0.1, 0.4
    label = Label.from_box(4, cx, cy, w, h)
    expected = {0: (cx, cy, w, h), 90: (cy, 1 - cx, h, w), 180: (1 - cx, 1 - cy, w, h), 270: (1 - cy, cx, h, w)}
    for angle, box in expected.items():
        assert rotate.turn_label(label, angle).box == pytest.approx(box, abs=1e-12)


def ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """Pixel box (x1, y1, x2, y2), exclusive ends, of the dark pixels."""
    ys, xs = np.nonzero(image.min(axis=2) < 128)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def label_box_px(label: Label, width: int, height: int) -> tuple[float, ...]:
    return tuple(from_yolo([label.box], width, height)[0])


@pytest.fixture
def rectangles(tmp_path):
    """One PNG per box, each with that filled rectangle and its label, plus an unrotated val split."""
    items = [(f"r{i}.png", rectangle_image(W, H, box), [box_line(i, box, W, H)]) for i, box in enumerate(BOXES)]
    return make_dataset(tmp_path / "src", {"train": items, "val": items[:1]})


def test_filled_rectangle_lands_on_its_transformed_box_in_every_copy(rectangles, tmp_path):
    out = rotate.run(rectangles, tmp_path / "out", workers=1, progress=False)
    images = load_dataset(out).images("train")
    assert len(images) == 4 * len(BOXES)
    for path in images:
        angle = int(path.stem[-3:])
        image = cv2.imread(str(path))
        assert image.shape[:2] == ((H, W) if angle in (0, 180) else (W, H))
        (label,) = read_labels(label_path(path), 10)
        height, width = image.shape[:2]
        assert label_box_px(label, width, height) == pytest.approx(ink_box(image), abs=1e-6)


def test_polygon_is_turned_before_it_is_boxed(tmp_path):
    triangle_px = np.array([[10, 5], [50, 20], [20, 40]])
    image = np.full((H, W, 3), 255, np.uint8)
    cv2.fillPoly(image, [triangle_px.astype(np.int32)], (0, 0, 0))
    normalized = triangle_px / [W, H]
    line = "2 " + " ".join(f"{v:.12f}" for v in normalized.ravel())
    data = make_dataset(tmp_path / "src", {"train": [("tri.png", image, [line])]})
    out = rotate.run(data, tmp_path / "out", workers=1, progress=False)
    for path in load_dataset(out).images("train"):
        angle = int(path.stem[-3:])
        (label,) = read_labels(label_path(path), 10)
        expected = Label(2, turn_points(normalized, angle))
        assert label.box == pytest.approx(expected.box, abs=1e-9)
        turned = cv2.imread(str(path))
        height, width = turned.shape[:2]
        assert label_box_px(label, width, height) == pytest.approx(ink_box(turned), abs=1.0)  # rasterized edges


def test_exif_orientation_is_applied_before_turning(tmp_path):
    """A phone JPEG stored sideways with orientation tag 6; its labels refer to the upright (displayed) image."""
    box = (8, 10, 30, 20)
    upright = rectangle_image(W, H, box)
    data = make_dataset(tmp_path / "src", {"train": [("photo.jpg", upright, [box_line(1, box, W, H)])]})
    path = tmp_path / "src" / "images" / "train" / "photo.jpg"
    stored = np.ascontiguousarray(np.rot90(upright[:, :, ::-1], 1))  # tag 6 = turn 90 clockwise to display
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(path, exif=exif, quality=100)

    out = rotate.run(data, tmp_path / "out", workers=1, progress=False)
    for image_path in load_dataset(out).images("train"):
        image = cv2.imread(str(image_path), cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR)  # raw stored pixels
        (label,) = read_labels(label_path(image_path), 10)
        height, width = image.shape[:2]
        assert label_box_px(label, width, height) == pytest.approx(ink_box(image), abs=1.0)  # JPEG edges


def file_bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_manifest_splits_and_unrotated_copies(rectangles, tmp_path):
    out = rotate.run(rectangles, tmp_path / "out", workers=1, progress=False)
    rows = rotate.read_manifest(out.parent / "manifest.csv")
    train = [r for r in rows if r["split"] == "train"]
    assert sorted((r["source_image"].rsplit("/", 1)[1], r["angle"]) for r in train) == sorted(
        (f"r{i}.png", a) for i in range(len(BOXES)) for a in TURNS)
    for row in rows:
        assert (out.parent / row["output_image"]).is_file()
        assert f"_rot{row['angle']:03d}" in row["output_image"] or row["split"] == "val"
    (val,) = [r for r in rows if r["split"] == "val"]
    src = tmp_path / "src"
    assert (out.parent / val["output_image"]).read_bytes() == (src / "images/val/r0.png").read_bytes()
    assert (out.parent / "labels/val/r0.txt").read_bytes() == (src / "labels/val/r0.txt").read_bytes()


def test_sources_untouched_and_rerun_identical(rectangles, tmp_path):
    src = tmp_path / "src"
    before = {p: hashlib.sha256(b).hexdigest() for p, b in file_bytes(src).items()}
    out_dir = tmp_path / "out"
    rotate.run(rectangles, out_dir, workers=1, progress=False)
    first = file_bytes(out_dir)
    with pytest.raises(FileExistsError, match="--overwrite"):
        rotate.run(rectangles, out_dir, workers=1, progress=False)
    rotate.run(rectangles, out_dir, workers=1, overwrite=True, progress=False)
    assert file_bytes(out_dir) == first  # byte-identical PNGs, labels, manifest and data.yaml
    assert {p: hashlib.sha256(b).hexdigest() for p, b in file_bytes(src).items()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no temporary folders left


def test_invalid_source_stops_before_anything_is_written(rectangles, tmp_path):
    (tmp_path / "src" / "labels" / "train" / "r1.txt").write_text("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 x\n")
    with pytest.raises(DatasetError, match=r"r1\.txt:2: numbers do not parse"):
        rotate.run(rectangles, tmp_path / "out", workers=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_output_folder_may_not_replace_its_source(rectangles, tmp_path):
    with pytest.raises(ValueError, match="would contain the source"):
        rotate.run(rectangles, tmp_path, overwrite=True, workers=1, progress=False)
    assert (tmp_path / "src" / "images" / "train" / "r0.png").exists()


def test_real_roboflow_export_rotates_train_and_copies_the_rest(signs_yaml, tmp_path):
    out = rotate.run(signs_yaml, tmp_path / "signs-rot", workers=2, progress=False)  # 87 images: a real pool
    serial = rotate.run(signs_yaml, tmp_path / "serial", workers=1, progress=False)
    parallel_files, serial_files = file_bytes(out.parent), file_bytes(serial.parent)
    del parallel_files[out.relative_to(out.parent)], serial_files[serial.relative_to(serial.parent)]  # own paths
    assert parallel_files == serial_files
    source, rotated = load_dataset(signs_yaml), load_dataset(out)
    assert len(rotated.images("train")) == 4 * len(source.images("train"))
    for split in ("val", "test"):
        assert len(rotated.images(split)) == len(source.images(split))
    boxes = sum(len(read_labels(label_path(p), 10)) for p in rotated.images("train"))
    assert boxes == 4 * sum(len(read_labels(label_path(p), 10)) for p in source.images("train"))


def test_turns_flag_and_its_older_name(tmp_path):
    assert rotate.parse_opt(["d.yaml", str(tmp_path), "--turns", "0", "180"]).turns == [0, 180]
    assert rotate.parse_opt(["d.yaml", str(tmp_path), "--angles", "90"]).turns == [90]
    assert rotate.parse_opt(["d.yaml", str(tmp_path)]).turns == list(TURNS)
