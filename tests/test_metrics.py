"""digitdet.metrics against values worked out by hand."""

import json
import math

import numpy as np
import pytest

from digitdet.boxes import iou
from digitdet.detector import Detections
from digitdet.metrics import (CONFIDENCE_GRID, DetectionEvaluator, Truth, format_table, match,
                              numbers_read_exactly, write_plots)

NAMES = [str(d) for d in range(10)]


def box(x: float, y: float = 0.0, size: float = 10.0) -> list[float]:
    return [x, y, x + size, y + size]


def found(boxes, classes, confidences) -> Detections:
    """Predictions, known by their best class."""
    return Detections.top1(boxes, classes, confidences)


def no_boxes() -> Detections:
    return found(np.zeros((0, 4)), [], [])


def test_perfect_predictions_give_map_1_and_a_diagonal_confusion_matrix():
    evaluator = DetectionEvaluator(NAMES)
    truth = Truth([box(0), box(20), box(40, 30, 60)], [3, 7, 3])
    evaluator.update(found(truth.boxes, truth.classes, [0.9, 0.8, 0.7]), truth)
    evaluator.update(found([box(5)], [0], [0.6]), Truth([box(5)], [0]))
    result = evaluator.compute()
    for key in ("map50", "map75", "map50_95", "map_small", "map_medium"):  # 60 x 60 px is medium (32..96 px)
        assert result.coco[key] == pytest.approx(1.0), key
    assert math.isnan(result.coco["map_large"])  # no large boxes: undefined, not 0
    assert list(result.counts) == [1, 0, 0, 2, 0, 0, 0, 1, 0, 0]
    assert result.mean(result.f1) == result.mean(result.precision) == result.mean(result.recall) == 1.0
    assert result.confidence == pytest.approx(0.6)  # F1 is 1 at every score; the highest such threshold keeps all
    expected = np.zeros((11, 11), int)
    expected[0, 0], expected[3, 3], expected[7, 7] = 1, 2, 1
    np.testing.assert_array_equal(result.confusion, expected)


def test_average_precision_of_a_known_ranking():
    # One class, 3 truth boxes in 2 images; predictions by score: 0.9 hit, 0.8 miss, 0.7 hit, 0.6 miss.
    # Precision-recall points: (1/3, 1), (1/3, 1/2), (2/3, 2/3), (2/3, 1/2); recall never reaches 1.
    # COCO's interpolated precision at recall r is the best precision at recall >= r:
    #   r in 0.00..0.33 (34 points) -> 1;  r in 0.34..0.66 (33 points) -> 2/3;  r in 0.67..1.00 -> 0.
    # AP = (34 * 1 + 33 * 2/3) / 101 = 56/101. The hits are exact boxes, so every IoU threshold gives the same.
    evaluator = DetectionEvaluator(NAMES)
    evaluator.update(found([box(0), box(100)], [4, 4], [0.9, 0.8]), Truth([box(0), box(20)], [4, 4]))
    evaluator.update(found([box(40), box(200)], [4, 4], [0.7, 0.6]), Truth([box(40)], [4]))
    result = evaluator.compute()
    assert result.ap50[4] == pytest.approx(56 / 101)
    assert result.coco["map50"] == result.coco["map50_95"] == pytest.approx(56 / 101)
    assert result.coco["mar_300"] == pytest.approx(2 / 3)
    assert np.isnan(result.ap50[[0, 1, 2, 3, 5, 6, 7, 8, 9]]).all()  # classes without boxes are left out
    # the PR curve is that interpolated precision at the 101 recall points
    np.testing.assert_allclose(result.pr_precision[4], [1.0] * 34 + [2 / 3] * 33 + [0.0] * 34)


def test_ultralytics_interpolation_on_the_same_ranking_differs_as_the_readme_says():
    # ultralytics integrates the same precision envelope with the trapezoid rule over 101 points instead of
    # averaging them: 0.33 + (1 + 2/3)/2 * 0.01 + 0.32 * 2/3 + (2/3 + 0)/2 * 0.01 = 0.555, vs COCO's 56/101 = 0.5545.
    from ultralytics.utils.metrics import compute_ap

    ap, _, _ = compute_ap(np.array([1 / 3, 1 / 3, 2 / 3, 2 / 3]), np.array([1, 1 / 2, 2 / 3, 1 / 2]))
    assert ap == pytest.approx(0.555)


def test_iou_thresholds_count_in_map50_95():
    # A hit with IoU 0.587 (boxes [0,10] and [2.6,12.6], 10 high: overlap 7.4, union 12.6) is a true positive for
    # the thresholds 0.50 and 0.55 and a miss for the other 8: mAP50 1, mAP50-95 2/10, mAP75 0.
    evaluator = DetectionEvaluator(NAMES)
    evaluator.update(found([[2.6, 0, 12.6, 10]], [1], [0.9]), Truth([[0, 0, 10, 10]], [1]))
    result = evaluator.compute()
    assert result.coco["map50"] == pytest.approx(1.0)
    assert result.coco["map75"] == 0.0
    assert result.coco["map50_95"] == pytest.approx(0.2)


def test_confusion_matrix_counts_confusions_and_background():
    truth = Truth([box(0), box(20), box(40)], [1, 2, 3])
    predictions = found([box(0), box(20), box(100), box(0), box(1)], [1, 5, 4, 1, 1], [0.9, 0.8, 0.7, 0.3, 0.6])
    evaluator = DetectionEvaluator(NAMES)
    evaluator.update(predictions, truth)
    result = evaluator.compute(confidence=0.5)
    # at confidence >= 0.5: the 1 is found (1, 1); the 2 is taken for a 5 (2, 5); the 4 on empty paper is
    # (background, 4); the second, weaker box on the 1 is a duplicate: (background, 1); the 3 is missed:
    # (3, background). The 0.3 box is below the threshold and not counted.
    expected = np.zeros((11, 11), int)
    expected[1, 1] = expected[2, 5] = expected[10, 4] = expected[10, 1] = expected[3, 10] = 1
    np.testing.assert_array_equal(result.confusion, expected)
    # precision and recall at that threshold agree with the matrix: class 1 has 1 hit of 2 predictions, 1 of 1 box
    assert (result.precision[1], result.recall[1]) == (0.5, 1.0)
    assert (result.precision[2], result.recall[2]) == (0.0, 0.0)


def test_six_nine_confusion_counts_the_found_sixes_and_nines():
    # four 6s and two 9s: one 6 read as 9, one 9 read as 6, one 6 read as 5, one 6 missed
    truth = Truth([box(0), box(20), box(40), box(60), box(80), box(100)], [6, 6, 6, 6, 9, 9])
    predictions = found([box(0), box(20), box(40), box(80), box(100)], [6, 9, 5, 9, 6], [0.9] * 5)
    evaluator = DetectionEvaluator(NAMES)
    evaluator.update(predictions, truth)
    result = evaluator.compute(confidence=0.5)
    assert result.six_nine_confusion() == pytest.approx(2 / 5)  # 2 swapped of the 5 found (the missed 6 is out)
    assert result.summary()["six_nine_confusion"] == pytest.approx(2 / 5)
    evaluator = DetectionEvaluator(NAMES)
    evaluator.update(found([box(0)], [3], [0.9]), Truth([box(0)], [3]))
    no_sixes_or_nines = evaluator.compute()
    assert no_sixes_or_nines.six_nine_confusion() is None and "six_nine_confusion" not in no_sixes_or_nines.summary()


def test_f1_curve_maximum_and_its_confidence():
    # One class, 2 boxes; predictions by score: 0.9 hit, 0.8 miss, 0.6 hit, 0.3 miss. Keeping scores >= c:
    #   c in (0.8, 0.9]: P 1,   R 1/2  F1 2/3
    #   c in (0.6, 0.8]: P 1/2, R 1/2  F1 1/2
    #   c in (0.3, 0.6]: P 2/3, R 1    F1 4/5   <- the maximum; the highest such threshold is 0.6
    #   c <= 0.3:        P 1/2, R 1    F1 2/3
    evaluator = DetectionEvaluator(NAMES)
    evaluator.update(found([box(0), box(100), box(20), box(200)], [2, 2, 2, 2], [0.9, 0.8, 0.6, 0.3]),
                     Truth([box(0), box(20)], [2, 2]))
    result = evaluator.compute()
    assert result.confidence == pytest.approx(0.6)
    assert result.f1[2] == pytest.approx(0.8)
    assert (result.precision[2], result.recall[2]) == (pytest.approx(2 / 3), 1.0)
    curve = dict(zip(np.round(CONFIDENCE_GRID, 3), result.f1_curve[2]))
    assert curve[0.2] == pytest.approx(2 / 3) and curve[0.5] == pytest.approx(0.8)
    assert curve[0.7] == pytest.approx(0.5) and curve[0.85] == pytest.approx(2 / 3) and curve[0.95] == 0.0
    assert result.f1_curve[2].max() == pytest.approx(0.8)


def test_f1_is_the_mean_over_classes_that_have_boxes():
    # class 0: its one box found at 0.9; class 1: its box found only at 0.4. F1 means at c = 0.9: (1 + 0) / 2;
    # at c = 0.4: (1 + 1) / 2. Class 2 has a false box but no truth: it lowers nothing (as COCO and ultralytics).
    evaluator = DetectionEvaluator(NAMES)
    evaluator.update(found([box(0), box(20), box(50)], [0, 1, 2], [0.9, 0.4, 0.95]),
                     Truth([box(0), box(20)], [0, 1]))
    result = evaluator.compute()
    assert result.confidence == pytest.approx(0.4)
    assert result.mean(result.f1) == 1.0


def test_match_goes_by_score_then_iou():
    ious = np.array([[0.6, 0.9],    # weaker prediction: best with truth 1
                     [0.7, 0.8]])   # stronger prediction: goes first, takes truth 1 (its best), leaves truth 0
    assert list(match(ious, np.array([0.5, 0.9]))) == [0, 1]
    assert list(match(np.array([[0.4]]), np.array([0.9]))) == [-1]  # under IoU 0.5


def test_no_predictions_at_all():
    evaluator = DetectionEvaluator(NAMES)
    evaluator.update(no_boxes(), Truth([box(0)], [6]))
    result = evaluator.compute()
    assert result.coco["map50"] == 0.0 and result.mean(result.f1) == 0.0
    assert result.confusion[6, 10] == 1 and result.confusion.sum() == 1


def test_numbers_read_exactly_needs_the_digits_and_the_place():
    truth = [("4821", [0, 0, 40, 10]), ("7", [0, 20, 10, 30]), ("15", [50, 0, 70, 10])]
    read = [("4821", [1, 0, 41, 10]),   # right
            ("7", [30, 20, 40, 30]),     # right digits, wrong place
            ("16", [50, 0, 70, 10]),     # right place, wrong digits
            ("4821", [0, 0, 40, 10])]    # a second reading of the same number counts once
    assert numbers_read_exactly(read, truth) == 1
    assert numbers_read_exactly([], truth) == 0


def test_truth_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="2 boxes but 1 classes"):
        Truth([box(0), box(1)], [1])


def test_report_outputs(tmp_path):
    evaluator = DetectionEvaluator(NAMES)
    evaluator.update(found([box(0), box(20)], [1, 2], [0.9, 0.95]), Truth([box(0), box(20)], [1, 8]))
    result = evaluator.compute()
    table = format_table(result).splitlines()
    assert table[0].split() == ["class", "count", "AP50", "AP50-95", "P", "R", "F1"]
    assert table[1].split() == ["all", "2", "0.500", "0.500", "0.500", "0.500", "0.500"]
    assert table[3].split() == ["1", "1", "1.000", "1.000", "1.000", "1.000", "1.000"]
    assert table[4].split() == ["2", "0", "-", "-", "0.000", "-", "-"]  # only a false box: no recall
    report = json.loads(json.dumps(result.to_json()))  # strict JSON: undefined values are null
    assert report["per_class"]["8"] == {"ap50": 0.0, "ap50_95": 0.0, "ar": 0.0, "precision": 0.0, "recall": 0.0,
                                        "f1": 0.0, "count": 1}
    assert report["per_class"]["0"]["ap50"] is None
    assert report["confusion_matrix"]["counts"][8][2] == 1
    paths = write_plots(result, tmp_path, "_rot090")
    assert [p.name for p in paths] == ["PR_curve_rot090.png", "F1_curve_rot090.png", "confusion_matrix_rot090.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def noisy_predictions(rng: np.random.Generator, truth: Truth) -> Detections:
    """A plausible detector's output: each box found with a shifted outline (IoU about 0.4 to 1), sometimes with
    the wrong digit or not at all, and some boxes on empty paper; scores loosely follow correctness."""
    boxes, classes, scores = [], [], []
    for xyxy, cls in zip(truth.boxes, truth.classes):
        if rng.random() < 0.15:
            continue
        size = xyxy[2:] - xyxy[:2]
        boxes.append(xyxy + np.tile(rng.normal(0, 0.12, 2) * size, 2) + rng.normal(0, 0.05, 4) * np.tile(size, 2))
        wrong = rng.random() < 0.2
        classes.append(int(rng.integers(10)) if wrong else cls)
        scores.append(float(np.clip(rng.normal(0.35 if wrong else 0.6, 0.2), 0.01, 0.99)))
    for _ in range(rng.integers(0, 4)):
        x, y = rng.uniform(0, 300, 2)
        boxes.append([x, y, x + 20, y + 28])
        classes.append(int(rng.integers(10)))
        scores.append(float(rng.uniform(0.01, 0.5)))
    return found(np.array(boxes).reshape(-1, 4), classes, scores)


def test_same_predictions_give_ultralytics_map_within_interpolation():
    """On identical predictions, ultralytics' own matching and AP (validator.match_predictions, ap_per_class) and our
    torchmetrics COCO numbers differ only by the interpolation rule: far less than 0.02."""
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import ap_per_class

    rng = np.random.default_rng(0)
    validator = DetectionValidator()
    evaluator = DetectionEvaluator(NAMES)
    correct, scores, predicted, true = [], [], [], []
    for _ in range(40):
        corners = rng.uniform(0, 280, (12, 2))
        truth = Truth(np.hstack([corners, corners + rng.uniform([12, 20], [30, 40], (12, 2))]), rng.integers(0, 10, 12))
        predictions = noisy_predictions(rng, truth)
        evaluator.update(predictions, truth)
        order = np.argsort(-predictions.confidences, kind="stable")  # match_predictions wants descending confidence
        ious = torch.from_numpy(iou(truth.boxes, predictions.boxes[order]))
        correct.append(validator.match_predictions(torch.from_numpy(predictions.classes[order]),
                                                   torch.from_numpy(truth.classes), ious).numpy())
        scores.append(predictions.confidences[order])
        predicted.append(predictions.classes[order])
        true.append(truth.classes)
    ap = ap_per_class(np.concatenate(correct), np.concatenate(scores), np.concatenate(predicted),
                      np.concatenate(true))[5]
    ours = evaluator.compute()
    assert 0.3 < ours.coco["map50"] < 0.9  # a curve with something to interpolate
    assert ours.coco["map50"] == pytest.approx(ap[:, 0].mean(), abs=0.01)
    assert ours.coco["map50_95"] == pytest.approx(ap.mean(), abs=0.01)
