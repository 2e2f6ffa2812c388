"""YOLO dataset reading, writing and validation."""

import subprocess
import sys

import numpy as np
import pytest

from digitdet.labels import (DatasetError, Label, label_path, load_dataset, numbers_path, parse_line, read_labels,
                             require_valid, validate, write_labels, yolo_line)
from synth import box_line, make_dataset, rectangle_image

W, H = 40, 30
BOX = (10, 6, 20, 18)


def simple_split(n: int = 2):
    return [(f"img{i}.png", rectangle_image(W, H, BOX), [box_line(i % 10, BOX, W, H)]) for i in range(n)]


@pytest.mark.parametrize("layout", ["ultralytics", "roboflow"])
def test_both_layouts_resolve_to_the_same_images_and_labels(tmp_path, layout):
    data = make_dataset(tmp_path, {"train": simple_split(3), "val": simple_split(1)}, layout=layout)
    dataset = load_dataset(data)
    assert sorted(dataset.splits) == ["train", "val"]
    images = dataset.images("train")
    assert [p.name for p in images] == ["img0.png", "img1.png", "img2.png"]
    labels = read_labels(label_path(images[1]), len(dataset.names))
    assert [label.cls for label in labels] == [1]
    assert labels[0].box == pytest.approx(((10 + 20) / 2 / W, (6 + 18) / 2 / H, 10 / W, 12 / H), abs=1e-12)


def test_names_as_dict_and_relative_path_key(tmp_path):
    make_dataset(tmp_path / "set", {"train": simple_split()})
    (tmp_path / "data.yaml").write_text("path: set\ntrain: images/train\nnames: {0: zero, 1: one}\n")
    dataset = load_dataset(tmp_path / "data.yaml")
    assert dataset.names == ["zero", "one"]
    assert dataset.root == (tmp_path / "set").resolve()


def test_label_and_sidecar_paths_follow_the_last_images_folder(tmp_path):
    image = tmp_path / "images" / "x" / "train" / "images" / "a.jpg"
    assert label_path(image) == tmp_path / "images" / "x" / "train" / "labels" / "a.txt"
    assert numbers_path(image) == tmp_path / "images" / "x" / "train" / "numbers" / "a.json"
    with pytest.raises(DatasetError, match="not inside an 'images' folder"):
        label_path(tmp_path / "a.jpg")


def test_polygon_line_becomes_its_bounding_box():
    label = parse_line("3 0.1 0.2 0.5 0.1 0.4 0.7 0.2 0.6", 10)
    assert label.cls == 3
    assert label.box == pytest.approx((0.3, 0.4, 0.4, 0.6), abs=1e-12)


def test_write_then_read_round_trips(tmp_path):
    labels = [Label.from_box(7, 0.323456789, 0.5, 0.25, 0.0625), Label.from_box(0, 0.9, 0.1, 0.2, 0.2)]
    path = tmp_path / "a.txt"
    write_labels(path, labels)
    back = read_labels(path, 10)
    assert [b.cls for b in back] == [7, 0]
    for a, b in zip(labels, back):
        np.testing.assert_allclose(a.box, b.box, atol=1e-10)


def test_yolo_line_keeps_ten_significant_digits_without_float_noise():
    assert yolo_line(7, 0.1 + 0.2, 0.5, 1 / 3, 0.0625) == "7 0.3 0.5 0.3333333333 0.0625"
    assert Label.from_box(2, 0.25, 0.75, 0.5, 0.125).line() == "2 0.25 0.75 0.5 0.125"


def test_small_overshoot_is_clipped_but_large_is_an_error():
    assert parse_line("1 0.5 0.5 1.004 0.2", 10).box[2] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="outside"):
        parse_line("1 0.5 0.5 1.2 0.2", 10)


BAD_LINES = {
    "1 0.5 abc 0.2 0.2": "do not parse",
    "12 0.5 0.5 0.2 0.2": "class id 12 is outside names",
    "-1 0.5 0.5 0.2 0.2": "class id -1 is outside names",
    "1 1.5 0.5 0.2 0.2": "outside [0, 1]",
    "1 0.5 0.5 0 0.2": "zero or negative size",
    "1 0.5 0.5 0.2 -0.1": "zero or negative size",
    "1 0.5 0.5 0.2": "expected 'class cx cy w h'",
    "1 0.5 0.5 nan 0.2": "finite",
}


def test_validation_names_file_and_line_of_every_problem(tmp_path):
    lines = ["0 0.5 0.5 0.2 0.2", *BAD_LINES]  # one good line first, so problems start at line 2
    items = [("bad.png", rectangle_image(W, H, BOX), lines), ("background.png", rectangle_image(W, H, BOX), None)]
    data = make_dataset(tmp_path, {"train": items})
    (tmp_path / "labels" / "train" / "orphan.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "images" / "train" / "garbage.jpg").write_bytes(b"not an image at all")
    good_jpeg = (tmp_path / "images" / "train" / "cut.jpg")
    import cv2
    cv2.imwrite(str(good_jpeg), rectangle_image(W, H, BOX))
    good_jpeg.write_bytes(good_jpeg.read_bytes()[:-40])  # truncated: its data ends early
    (tmp_path / "images" / "train" / "cut_named_png.png").write_bytes(good_jpeg.read_bytes())  # a suffix that lies

    summaries, problems = validate(load_dataset(data))
    text = [str(p) for p in problems]
    bad_label = str(tmp_path / "labels" / "train" / "bad.txt")
    for number, (line, reason) in enumerate(BAD_LINES.items(), start=2):
        assert any(t.startswith(f"{bad_label}:{number}: ") and reason in t for t in text), (line, text)
    assert any("orphan.txt: label file without an image" in t for t in text)
    assert any("garbage.jpg: unreadable image" in t for t in text)
    assert any("cut.jpg: damaged JPEG image: image file is truncated" in t for t in text)
    assert any("cut_named_png.png: damaged JPEG image" in t for t in text)
    assert len(problems) == len(BAD_LINES) + 4  # the background image is not a problem
    assert summaries["train"].images == 5 and summaries["train"].boxes == 1
    assert summaries["train"].backgrounds == 4  # background.png, and the three broken images without labels
    with pytest.raises(DatasetError, match=f"{len(problems)} problem"):
        require_valid(load_dataset(data))


def test_missing_split_folder_and_bad_names_are_clear_errors(tmp_path):
    (tmp_path / "data.yaml").write_text("train: images/train\nnames: ['0']\n")
    with pytest.raises(DatasetError, match="train path .* does not exist"):
        load_dataset(tmp_path / "data.yaml")
    (tmp_path / "data.yaml").write_text("train: images/train\nnames: {0: a, 2: b}\n")
    with pytest.raises(DatasetError, match="keys must be 0..1"):
        load_dataset(tmp_path / "data.yaml")
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "missing.yaml")


def test_check_command_summarizes_real_roboflow_export(signs_yaml):
    result = subprocess.run([sys.executable, "-m", "digitdet.labels", "check", str(signs_yaml)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "train      87 images      177 boxes" in result.stdout  # README: 87 train, 6 valid, 3 test
    assert "val         6 images" in result.stdout and "test        3 images" in result.stdout
    assert "problems: 0" in result.stdout


def test_check_command_exits_nonzero_and_lists_problems(tmp_path):
    data = make_dataset(tmp_path, {"train": [("a.png", rectangle_image(W, H, BOX), ["15 0.5 0.5 0.2 0.2"])]})
    result = subprocess.run([sys.executable, "-m", "digitdet.labels", "check", str(data)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert f"{tmp_path / 'labels' / 'train' / 'a.txt'}:1: class id 15 is outside names" in result.stdout
