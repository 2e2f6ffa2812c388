"""Reading order: digits grouped into numbers by line and by gap, on synthetic layouts with known answers."""

import json
import math

import numpy as np
import pytest
import torch

from digitdet.reading import read_numbers

HEIGHT, WIDTH, PITCH, SPACE, LINE_PITCH = 40.0, 26.0, 32.0, 40.0, 64.0  # within a number the gap is 6 px


def layout(lines: list[str], angle_deg: float = 0.0, sizes: np.ndarray | None = None, origin=(50.0, 60.0),
           space: float = SPACE):
    """Boxes for lines of text ('4821 07'): each digit a box, a space a wider gap; the page turned by angle_deg
    (clockwise in image coordinates, y down). Returns boxes, classes and the expected numbers in reading order."""
    boxes, classes, expected = [], [], []
    turn = math.radians(angle_deg)
    k = 0
    for row, text in enumerate(lines):
        x = 0.0
        for word in text.split(" "):
            for char in word:
                scale = 1.0 if sizes is None else sizes[k]
                cx, cy = x + WIDTH / 2, row * LINE_PITCH + HEIGHT / 2 + HEIGHT * (1 - scale) / 2  # baseline-aligned
                rx = origin[0] + cx * math.cos(turn) - cy * math.sin(turn)
                ry = origin[1] + cx * math.sin(turn) + cy * math.cos(turn)
                w, h = WIDTH * scale, HEIGHT * scale
                boxes.append([rx - w / 2, ry - h / 2, rx + w / 2, ry + h / 2])
                classes.append(int(char))
                x += PITCH
                k += 1
            x += space
            expected.append(word)
    return np.array(boxes), np.array(classes), expected


def shuffled(boxes, classes, seed=0):
    order = np.random.default_rng(seed).permutation(len(boxes))
    return boxes[order], classes[order], order


def test_two_lines_with_gaps_in_reading_order_from_shuffled_boxes():
    boxes, classes, expected = layout(["4821 07", "15 3"])
    boxes, classes, order = shuffled(boxes, classes)
    numbers = read_numbers(boxes, classes, np.linspace(0.5, 0.9, len(boxes)))
    assert [n.digits for n in numbers] == expected == ["4821", "07", "15", "3"]
    assert [n.line for n in numbers] == [0, 0, 1, 1]
    # members point back into the (shuffled) input, left to right: the original positions 0..3 for "4821"
    assert [int(order[i]) for i in numbers[0].members] == [0, 1, 2, 3]
    assert sorted(i for n in numbers for i in n.members) == list(range(len(boxes)))


def test_number_box_is_the_union_and_confidence_the_weakest_digit():
    boxes = np.array([[10, 20, 30, 60], [34, 18, 58, 58], [62, 22, 84, 61]], dtype=float)
    (number,) = read_numbers(boxes, [7, 0, 3], [0.9, 0.4, 0.8])
    assert number.digits == "703"
    assert number.box == (10.0, 18.0, 84.0, 61.0)
    assert number.members == [0, 1, 2]
    assert number.confidence == pytest.approx(0.4)


@pytest.mark.parametrize("angle", [-6.0, -3.0, 3.0, 6.0])
def test_slightly_skewed_page_keeps_lines_and_numbers(angle):
    lines = ["123 456 789 0", "98765 43 21", "5 5 5"]
    boxes, classes, expected = layout(lines, angle_deg=angle)
    boxes, classes, _ = shuffled(boxes, classes, seed=1)
    assert [n.digits for n in read_numbers(boxes, classes)] == expected


def test_skewed_line_with_a_wide_gap_stays_one_line():
    # 400 px between numbers at 6 degrees drifts 42 px, more than a digit's height: only the line's slope bridges it
    boxes, classes, expected = layout(["1234 5678", "9012 3456"], angle_deg=6.0, space=400.0)
    numbers = read_numbers(*shuffled(boxes, classes, seed=4)[:2])
    assert [(n.digits, n.line) for n in numbers] == [("1234", 0), ("5678", 0), ("9012", 1), ("3456", 1)]


def test_varied_digit_sizes_stay_on_their_line():
    lines = ["31415 926", "2718 28", "1 41421"]
    n = sum(len(t.replace(" ", "")) for t in lines)
    sizes = np.random.default_rng(3).uniform(0.7, 1.15, n)
    boxes, classes, expected = layout(lines, angle_deg=2.0, sizes=sizes)
    boxes, classes, _ = shuffled(boxes, classes, seed=2)
    assert [n.digits for n in read_numbers(boxes, classes)] == expected


def test_gap_threshold_splits_wide_gaps_only():
    def two_digits(gap):
        return np.array([[0, 0, 26, 40], [26 + gap, 0, 52 + gap, 40]], dtype=float)

    assert [n.digits for n in read_numbers(two_digits(10), [1, 2])] == ["12"]  # gap 0.25 x height
    assert [n.digits for n in read_numbers(two_digits(-4), [1, 2])] == ["12"]  # touching, overlapping boxes
    assert [n.digits for n in read_numbers(two_digits(40), [1, 2])] == ["1", "2"]  # gap 1.0 x height


def test_number_far_right_on_the_same_line_is_read_after_the_left_one():
    boxes = np.array([[400, 100, 426, 140], [430, 101, 456, 141],  # "90" far right, one pixel lower
                      [0, 102, 26, 142], [30, 100, 56, 140]], dtype=float)  # "12" on the left
    numbers = read_numbers(boxes, [9, 0, 1, 2])
    assert [(n.digits, n.line) for n in numbers] == [("12", 0), ("90", 0)]


def test_names_map_classes_and_torch_inputs_work():
    boxes = torch.tensor([[0, 0, 26, 40], [30, 0, 56, 40]], dtype=torch.float32)
    numbers = read_numbers(boxes, torch.tensor([0, 1]), torch.tensor([0.5, 0.6]), names=["zero", "one"])
    assert [n.digits for n in numbers] == ["zeroone"]


def test_empty_and_mismatched_inputs():
    assert read_numbers(np.zeros((0, 4)), [], []) == []
    with pytest.raises(ValueError, match="differ in length"):
        read_numbers(np.zeros((2, 4)), [1], [0.5, 0.5])


def test_generated_pages_read_back_as_written(tiny_pages):
    """The page builder's sidecars list each page's numbers in reading order with their digit boxes: reading the
    true digit boxes must give the same numbers in the same order on nearly every page (a scattered single digit
    written right beside a number can honestly read as part of it)."""
    sidecars = sorted(tiny_pages.parent.glob("numbers/*/*.json"))
    assert len(sidecars) >= 10
    exact = 0
    for sidecar in sidecars:
        page = json.loads(sidecar.read_text())
        boxes = [box for number in page["numbers"] for box in number["digit_boxes"]]
        classes = [int(d) for number in page["numbers"] for d in number["digits"]]
        read = [n.digits for n in read_numbers(np.array(boxes, float).reshape(-1, 4), classes)]
        exact += read == [number["digits"] for number in page["numbers"]]
    assert exact >= 0.8 * len(sidecars)
