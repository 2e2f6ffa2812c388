"""Orientation-aware detection: the turn vote, relabelling by the page's turn, reading turned pages upright, the
joint training data, and a tiny end-to-end run (train.py --orientation, detect.py, evaluate.py)."""

import json

import cv2
import numpy as np
import pytest

import detect
import evaluate
import train
from digitdet import datasets
from digitdet import orientation as ori
from digitdet.detector import Detector
from digitdet.labels import label_path, load_dataset
from digitdet.reading import read_numbers
from digitdet.turns import TURNS, turn_boxes, turn_image, turned_size, upright_boxes
from synth import DIGITS, box_line, make_dataset, rectangle_image
from fakes import TurnedBlobs, draw_digits, written


def joint_scores(*boxes: tuple[int, int, float]) -> np.ndarray:
    """(N, 40) scores: each box (digit, turn, confidence) scores its joint class, and nothing else."""
    scores = np.zeros((len(boxes), 40), np.float32)
    for row, (digit, turn, confidence) in enumerate(boxes):
        scores[row, ori.joint_class(digit, turn)] = confidence
    return scores


def test_joint_classes_are_digit_plus_ten_times_the_turn():
    assert ori.JOINT_NAMES[:10] == DIGITS and len(ori.JOINT_NAMES) == 40
    assert ori.JOINT_NAMES[ori.joint_class(6, 180)] == "6@180" and ori.joint_class(6, 180) == 26
    assert ori.is_joint(ori.JOINT_NAMES) and not ori.is_joint(DIGITS)


def test_the_vote_goes_to_the_turn_of_the_informative_digits():
    vote = ori.page_turn(joint_scores((7, 90, 0.9), (2, 90, 0.8), (4, 270, 0.3)))
    assert vote.turn == 90
    np.testing.assert_allclose(vote.votes, [0, 1.7, 0, 0.3], atol=1e-6)
    assert vote.confidence == pytest.approx(1.7 / 2.0)


def test_turn_symmetric_digits_carry_no_weight():
    confident_zeros_ones_eights = [(d, 180, 0.99) for d in (0, 1, 8) * 10]
    vote = ori.page_turn(joint_scores(*confident_zeros_ones_eights, (3, 0, 0.4)))
    assert vote.turn == 0 and vote.votes == pytest.approx((0.4, 0, 0, 0))
    nothing_to_go_on = ori.page_turn(joint_scores(*confident_zeros_ones_eights))
    assert (nothing_to_go_on.turn, nothing_to_go_on.confidence) == (0, 0.0)


def test_six_and_nine_split_their_vote_between_opposite_turns_and_weak_boxes_do_not_vote():
    vote = ori.page_turn(joint_scores((6, 90, 0.8), (9, 270, 0.6), (5, 270, 0.5), (2, 0, ori.VOTE_CONF / 2)))
    np.testing.assert_allclose(vote.votes, [0, 0.7, 0, 0.7 + 0.5], atol=1e-6)
    assert vote.turn == 270


def test_each_box_gets_the_digit_that_fits_the_page_turn():
    # a 6 on an upside-down page looks exactly like an upright 9: the model may call it either
    six_upside_down = joint_scores((9, 0, 0.7))[0] + joint_scores((6, 180, 0.6))[0]
    seven_at_180 = joint_scores((7, 180, 0.9))[0]
    zero_seen_upright = joint_scores((0, 0, 0.8))[0]
    digits = ori.digit_scores(np.stack([six_upside_down, seven_at_180, zero_seen_upright]), 180)
    assert digits.argmax(1).tolist() == [6, 7, 0]
    np.testing.assert_allclose(digits.max(1), [0.7, 0.9, 0.8], atol=1e-6)
    upright = ori.digit_scores(six_upside_down[None], 0)
    assert upright.argmax(1).tolist() == [9]  # the same glyph on an upright page is a 9


def test_nms_groups_join_only_classes_that_can_be_one_glyph():
    group = lambda digit, turn: ori.NMS_GROUPS[ori.joint_class(digit, turn)]  # noqa: E731
    assert group(6, 0) == group(9, 180) and group(9, 90) == group(6, 270)
    assert group(0, 0) == group(0, 180) and group(8, 90) == group(8, 270)
    assert group(6, 0) != group(9, 0) and group(2, 0) != group(2, 180) and group(0, 0) != group(0, 90)


def test_boxes_turn_exactly_and_back():
    boxes = np.array([[10, 20, 30, 60], [0, 0, 100, 200]], float)  # in a 100 x 200 image
    # pixel (x, y) of W x H goes to (y, W - x) under a 90-degree counter-clockwise turn
    np.testing.assert_allclose(turn_boxes(boxes, 90, 100, 200), [[20, 70, 60, 90], [0, 0, 200, 100]])
    np.testing.assert_allclose(turn_boxes(boxes, 180, 100, 200), [[70, 140, 90, 180], [0, 0, 100, 200]])
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 1, (50, 4)) * [100, 200, 100, 200]
    boxes = np.concatenate([np.minimum(corners[:, :2], corners[:, 2:]), np.maximum(corners[:, :2], corners[:, 2:])],
                           axis=1)
    for turn in TURNS:
        width, height = turned_size(100, 200, turn)
        np.testing.assert_allclose(upright_boxes(turn_boxes(boxes, turn, 100, 200), turn, width, height),
                                   boxes, atol=1e-9)


def test_a_turned_page_is_read_in_upright_order():
    blocks = written(["4821 07", "15"], x0=30, y0=40, height=40, width=24, pitch=30, space=30, line_pitch=70)
    classes, boxes = [b[0] for b in blocks], np.array([b[1:] for b in blocks], float)
    for turn in TURNS:
        width, height = turned_size(320, 200, turn)
        turned = turn_boxes(boxes, turn, 320, 200)
        numbers = read_numbers(turned, classes, turn=turn, image_size=(width, height))
        assert [n.digits for n in numbers] == ["4821", "07", "15"]
        first = turned[[0, 1, 2, 3]]
        assert numbers[0].box == (first[:, 0].min(), first[:, 1].min(), first[:, 2].max(), first[:, 3].max())
    sideways = read_numbers(turn_boxes(boxes, 90, 320, 200), classes)
    assert len(sideways) > 3  # read as it lies, a sideways page falls apart into single digits


def test_detect_finds_the_turn_relabels_6_and_9_and_reads_upright(tmp_path, capsys):
    blocks = written(["4869 07", "96"], x0=30, y0=40, height=40, width=24, pitch=30, space=30, line_pitch=70)
    upright = draw_digits(np.full((200, 320, 3), 255, np.uint8), blocks)
    model = TurnedBlobs()
    detector = Detector("turned-blobs", backend=model)
    assert detector.names == DIGITS  # the joint classes collapse to digits
    for turn in TURNS:
        model.turn = turn
        page = tmp_path / f"page{turn}.png"
        cv2.imwrite(str(page), turn_image(upright, turn))
        report = detect.run(page, detector=detector, save_dir=tmp_path / f"out{turn}", save_json=True, upright=True)
        (result,) = report.results
        assert result.detections.turn == turn
        # 4 and 7 vote for the turn; 6 and 9 split theirs with the opposite turn; 0 and 8 do not vote
        assert result.detections.turn_confidence == pytest.approx((2 * 0.8 + 4 * 0.425) / (2 * 0.8 + 8 * 0.425))
        assert [n.digits for n in result.numbers] == ["4869", "07", "96"]
        line = capsys.readouterr().out.splitlines()[0]
        assert (f"(page turned {turn}°, " in line) == (turn != 0) and "4869 07 96" in line
        (record,) = json.loads((tmp_path / f"out{turn}" / "detections.json").read_text())["images"]
        assert (record["turn"], record["turn_confidence"]) == (turn, round(result.detections.turn_confidence, 4))
        saved = cv2.imread(str(result.annotated))
        assert saved.shape == upright.shape  # saved upright, whatever the turn


def test_evaluate_scores_the_turn_the_model_finds(tmp_path):
    """A stand-in orientation-aware model that finds every page turned 90: evaluate.py's turn figure is 0 on the
    upright pages and 1 on the pages turned 90, while the digits are found at both."""
    blocks = written(["2345 7", "52"], x0=30, y0=40, height=40, width=24, pitch=30, space=30, line_pitch=70)
    page = draw_digits(np.full((200, 320, 3), 255, np.uint8), blocks)
    lines = [box_line(digit, box, 320, 200) for digit, *box in blocks]
    data = make_dataset(tmp_path / "pages", {"train": [("t.png", page, lines)],
                                             "val": [(f"p{i}.png", page, lines) for i in range(3)]})
    model = TurnedBlobs()
    model.turn = 90
    predictor = evaluate.DetectorPredictor(Detector("turned-blobs", conf=0.001, backend=model))
    report = evaluate.run(data=data, split="val", turns=(0, 90), predictor=predictor, project=tmp_path,
                          verbose=False)
    upright, turned = report["rotations"]["0"], report["rotations"]["90"]
    assert upright["orientation"] == {"pages": 3, "right": 0, "accuracy": 0.0}
    assert turned["orientation"] == {"pages": 3, "right": 3, "accuracy": 1.0}
    assert upright["map50"] == pytest.approx(1.0) and turned["map50"] == pytest.approx(1.0)


def test_joint_training_data_labels_each_copy_with_its_turn(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DERIVED_DIR", tmp_path / "derived")
    box = (8, 16, 40, 56)
    item = lambda name, cls: (name, rectangle_image(64, 64, box), [box_line(cls, box, 64, 64)])  # noqa: E731
    source = make_dataset(tmp_path / "export", {"train": [item("t.png", 6)], "val": [item("v.png", 9)]},
                          "roboflow", names=DIGITS)
    data_yaml = datasets.prepare_data(source, orientation=True)
    derived = load_dataset(data_yaml)
    assert derived.names == ori.JOINT_NAMES
    classes = {image.name: label_path(image).read_text().split()[0] for image in derived.images("train")}
    assert classes == {"t_rot000.png": "6", "t_rot090.png": "16", "t_rot180.png": "26", "t_rot270.png": "36"}
    assert label_path(derived.images("val")[0]).read_text().split()[0] == "9"  # val stays upright
    with pytest.raises(ValueError, match="orientation-aware training needs the rotated copies"):
        datasets.prepare_data(source, rotate=False, orientation=True)


def test_tiny_end_to_end_orientation_aware_run(tiny_model, tiny_pages, tmp_path, monkeypatch):
    """train.py --orientation for an epoch, fine-tuning keeps it joint, then detect.py and evaluate.py use it."""
    monkeypatch.setattr(datasets, "DERIVED_DIR", tmp_path / "derived")
    run_dir = train.run(data=tiny_pages, weights=tiny_model, epochs=1, imgsz=128, batch=8, workers=0,
                        project=tmp_path / "runs", name="joint", orientation=True, plots=False)
    joint = run_dir / "weights" / "best.pt"
    detector = Detector(joint, conf=0.001)
    assert detector.joint and detector.names == DIGITS

    again = train.run(data=tiny_pages, weights=joint, epochs=1, imgsz=128, batch=8, workers=0,
                      project=tmp_path / "runs", name="again", plots=False)  # orientation follows the weights
    assert Detector(again / "weights" / "best.pt").joint

    page = sorted(load_dataset(tiny_pages).images("test"))[0]
    (result,) = detect.run(page, detector=detector, save_images=False, verbose=False).results
    assert result.detections.turn in TURNS and 0 <= result.detections.turn_confidence <= 1
    assert np.isin(result.detections.classes, range(10)).all()

    report = evaluate.run(joint, tiny_pages, turns=(0, 180), project=tmp_path / "results", name="joint",
                          verbose=False)
    for angle in ("0", "180"):
        turned = report["rotations"][angle]
        pages_with_digits = turned["orientation"]["pages"]
        assert 1 <= pages_with_digits <= 4 and 0 <= turned["orientation_accuracy"] <= 1
        assert turned["orientation"]["right"] == round(turned["orientation_accuracy"] * pages_with_digits)
        assert list(turned["per_class"]) == DIGITS
    assert report["engine"] == "ultralytics"  # asked for; the Detector stood in, as the note on stderr says
