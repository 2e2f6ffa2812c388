"""Detection metrics for digit boxes: COCO mAP from torchmetrics, and the rest (written once here).

torchmetrics' MeanAveragePrecision (pycocotools backend) matches and accumulates; its extended summary holds COCO's
precision array [IoU, recall, class, area, max-dets] and recall array, from which every AP and AR here is read.
torchmetrics' MulticlassConfusionMatrix counts the confusion matrix. What torchmetrics has no piece for is here:
  - matching predictions to truth boxes by COCO's rule (by descending confidence, each prediction claims the unclaimed
    box with the highest IoU >= 0.5); because a prediction's match never depends on weaker predictions, one matching
    gives the true positives at every confidence threshold,
  - precision, recall and F1 against confidence, and the confidence that maximizes F1 (mean over classes),
  - the detection confusion matrix over the classes plus background, at that confidence,
  - the share of numbers read exactly, the table, the PNG plots and the JSON of evaluate.py.

Predictions are the detector's Detections, truth is Truth (labelled boxes). Conventions: boxes are pixels (x1, y1,
x2, y2); class means are over the classes that have truth boxes (as COCO and ultralytics); the confusion matrix has
true classes as rows and predicted classes as columns, background last.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.detection import MeanAveragePrecision

from digitdet.boxes import as_boxes, iou
from digitdet.detector import Detections

IOU_THRESHOLD = 0.5  # for the F1 curve, the confusion matrix and reading positions
CONFIDENCE_GRID = np.linspace(0.0, 1.0, 1001)  # where F1 curves are drawn; the best confidence is found exactly
COCO_IOUS = np.linspace(0.5, 0.95, 10)  # COCO's IoU thresholds for mAP50-95
RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCO's recall points: AP is the mean interpolated precision at them
AREAS = {"all": 0, "small": 1, "medium": 2, "large": 3}  # COCO's area ranges: < 32^2, 32^2..96^2, > 96^2 pixels


@dataclass
class Truth:
    """One image's labelled boxes: boxes (N, 4) x1, y1, x2, y2 in pixels, and their classes (N,)."""

    boxes: np.ndarray
    classes: np.ndarray

    def __post_init__(self):
        self.boxes = as_boxes(self.boxes)
        self.classes = np.asarray(self.classes).reshape(-1).astype(np.int64)
        if len(self.classes) != len(self.boxes):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.classes)} classes")

    def __len__(self) -> int:
        return len(self.boxes)


def torchmetrics_item(boxes, classes, confidences=None) -> dict[str, torch.Tensor]:
    """One image's boxes as torchmetrics' MeanAveragePrecision takes them (with scores: predictions)."""
    item = {"boxes": torch.from_numpy(as_boxes(boxes)).float(),
            "labels": torch.from_numpy(np.asarray(classes).reshape(-1).astype(np.int64))}
    if confidences is not None:
        item["scores"] = torch.from_numpy(np.asarray(confidences, np.float64).reshape(-1)).float()
    return item


def match(ious: np.ndarray, scores: np.ndarray, threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """COCO's greedy matching: the truth index each prediction claims, or -1.

    Predictions (rows of `ious`) go in descending score; each claims the still unclaimed truth (column) with the
    highest IoU >= threshold. Pairs that must not match (other class) should have IoU 0 in `ious`.
    """
    claimed = np.full(len(scores), -1)
    taken = np.zeros(ious.shape[1], dtype=bool)
    for p in np.argsort(-scores, kind="stable"):
        candidates = np.where(taken, -1.0, ious[p])
        if candidates.size and candidates.max() >= threshold:
            claimed[p] = int(candidates.argmax())
            taken[claimed[p]] = True
    return claimed


@dataclass
class ImageMatch:
    """One image's predictions and truth, the same-class match of each prediction (-1: none), and the pairs that
    overlap enough to match (prediction index, truth index, IoU): all that is kept, as a set may have many images."""

    predictions: Detections
    truth: Truth
    claimed: np.ndarray
    overlaps: tuple[np.ndarray, np.ndarray, np.ndarray]

    @classmethod
    def of(cls, predictions: Detections, truth: Truth) -> ImageMatch:
        ious = iou(predictions.boxes, truth.boxes)
        same_class = np.asarray(predictions.classes)[:, None] == truth.classes[None, :]
        rows, columns = np.nonzero(ious >= IOU_THRESHOLD)
        return cls(predictions, truth, match(ious * same_class, predictions.confidences, IOU_THRESHOLD),
                   (rows, columns, ious[rows, columns]))

    def ious(self) -> np.ndarray:
        """The (predictions, truth) IoU matrix, with the IoUs too small to match as 0."""
        dense = np.zeros((len(self.predictions), len(self.truth)))
        rows, columns, values = self.overlaps
        dense[rows, columns] = values
        return dense

    def confusion_pairs(self, confidence: float, background: int) -> tuple[np.ndarray, np.ndarray]:
        """(true, predicted) class of every prediction with score >= confidence and every truth box.

        Same-class matches first (they are the true positives of the F1 curve at this confidence); then the left-over
        predictions and boxes are matched whatever their classes (a confusion); what is still left pairs with
        background: an unmatched prediction as (background, class), a missed box as (class, background).
        """
        kept = self.predictions.confidences >= confidence
        found = kept & (self.claimed >= 0)
        loose = np.flatnonzero(kept & (self.claimed < 0))  # kept predictions that found no box of their class
        unfound = np.setdiff1d(np.arange(len(self.truth)), self.claimed[found])
        crossed = match(self.ious()[np.ix_(loose, unfound)], self.predictions.confidences[loose], IOU_THRESHOLD)
        confused = crossed >= 0
        missed = np.setdiff1d(unfound, unfound[crossed[confused]])
        truth, predicted = self.truth.classes, self.predictions.classes
        true = [truth[self.claimed[found]], truth[unfound[crossed[confused]]],
                np.full(len(loose) - confused.sum(), background), truth[missed]]
        pred = [predicted[found], predicted[loose[confused]], predicted[loose[~confused]],
                np.full(len(missed), background)]
        return np.concatenate(true).astype(np.int64), np.concatenate(pred).astype(np.int64)


def precision_recall_f1(thresholds: np.ndarray, scores: np.ndarray, true_positive: np.ndarray,
                        classes: np.ndarray, truth_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 (each (K, len(thresholds))) when the predictions with score >= threshold are kept.

    A class with nothing kept has precision 0; a class without truth boxes has recall 0.
    """
    shape = (len(truth_counts), len(thresholds))
    precision, recall = np.zeros(shape), np.zeros(shape)
    for k, n_truth in enumerate(truth_counts):
        mine = classes == k
        order = np.argsort(-scores[mine], kind="stable")
        descending = scores[mine][order]
        hits = np.concatenate([[0], np.cumsum(true_positive[mine][order])])
        kept = np.searchsorted(-descending, -thresholds, side="right")  # how many scores are >= each threshold
        precision[k] = np.divide(hits[kept], kept, out=np.zeros(len(thresholds)), where=kept > 0)
        recall[k] = hits[kept] / n_truth if n_truth else 0.0
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(shape), where=total > 0)
    return precision, recall, f1


def best_confidence(scores: np.ndarray, true_positive: np.ndarray, classes: np.ndarray,
                    truth_counts: np.ndarray) -> float:
    """The confidence threshold that maximizes F1 averaged over the classes with truth boxes; of equal ones, the
    highest. Only the predictions' own scores can change F1, so they are the candidates (1.0 if there are none)."""
    candidates = np.unique(scores)[::-1] if len(scores) else np.array([1.0])
    _, _, f1 = precision_recall_f1(candidates, scores, true_positive, classes, truth_counts)
    return float(candidates[np.argmax(class_mean(f1, truth_counts))])


def class_mean(values: np.ndarray, truth_counts: np.ndarray) -> np.ndarray:
    """The mean over the classes (axis 0) that have truth boxes; NaN if none do."""
    present = truth_counts > 0
    return values[present].mean(axis=0) if present.any() else np.full(values.shape[1:], np.nan)


def coco_mean(values: np.ndarray) -> float:
    """COCO's summary of a slice of its precision or recall array: the mean of the defined (> -1) entries."""
    defined = values[values > -1]
    return float(defined.mean()) if defined.size else math.nan


@dataclass
class Evaluation:
    """Everything evaluate.py reports for one set of images. Per-class arrays are indexed by class id."""

    names: list[str]
    images: int
    coco: dict[str, float]  # map50_95, map50, map75, map_small/medium/large, mar_<max_det>, mar_small/medium/large
    ap50: np.ndarray
    ap50_95: np.ndarray
    ar: np.ndarray  # COCO average recall (over IoU 0.5:0.95, at most max_det detections per image and class)
    counts: np.ndarray  # truth boxes
    confidence: float  # the threshold that maximizes mean F1; precision, recall, f1 and the matrix are at it
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    confusion: np.ndarray  # (K + 1, K + 1) counts, rows true, columns predicted, background last
    pr_precision: np.ndarray  # (K, len(RECALL_POINTS)) interpolated precision at IoU 0.5; NaN: class without truth
    f1_curve: np.ndarray  # (K, len(CONFIDENCE_GRID))
    reading: dict | None = None  # {"numbers", "read_exactly", "accuracy", "confidence"}
    orientation: dict | None = None  # {"pages", "right", "accuracy"}: pages whose turn was found (predictor tells)

    @property
    def present(self) -> np.ndarray:
        return self.counts > 0

    def mean(self, values: np.ndarray) -> float:
        return float(class_mean(values, self.counts))

    def summary(self) -> dict[str, float]:
        """The headline numbers (what evaluate.py averages over turns)."""
        numbers = {"map50_95": self.coco["map50_95"], "map50": self.coco["map50"], "map75": self.coco["map75"],
                   "precision": self.mean(self.precision), "recall": self.mean(self.recall),
                   "f1": self.mean(self.f1)}
        if (six_nine := self.six_nine_confusion()) is not None:
            numbers["six_nine_confusion"] = six_nine
        if self.reading is not None:
            numbers["reading_accuracy"] = self.reading["accuracy"]
        if self.orientation is not None:
            numbers["orientation_accuracy"] = self.orientation["accuracy"]
        return numbers

    def six_nine_confusion(self) -> float | None:
        """Of the true 6s and 9s that were found (matched to a digit at the best-F1 confidence), the share taken for
        the other one; None when the classes are not digits or no 6 or 9 was found. Missed digits are left out, so
        that a model that finds few 6s and 9s cannot look good by missing them."""
        if self.names[:10] != [str(d) for d in range(10)]:
            return None
        found = self.confusion[[6, 9], :10].sum()
        return float(self.confusion[6, 9] + self.confusion[9, 6]) / float(found) if found else None

    def to_json(self) -> dict:
        per_class = {name: {"ap50": self.ap50[k], "ap50_95": self.ap50_95[k], "ar": self.ar[k],
                            "precision": self.precision[k], "recall": self.recall[k], "f1": self.f1[k],
                            "count": int(self.counts[k])} for k, name in enumerate(self.names)}
        return json_safe({"images": self.images, "boxes": int(self.counts.sum()), **self.summary(),
                       "confidence": self.confidence, "coco": self.coco,
                       "per_class": per_class, "reading": self.reading, "orientation": self.orientation,
                       "confusion_matrix": {"labels": self.names + ["background"], "rows": "true class",
                                            "columns": "predicted class", "counts": self.confusion.tolist()}})


def json_safe(value):
    """A JSON-safe copy: numpy scalars as Python numbers, NaN (undefined) as None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


class DetectionEvaluator:
    """Accumulate images with `update(predictions, truth)`, then `compute()` an Evaluation.

    Args:
        names: the class names; class ids index them.
        max_det: COCO's limit on the detections it counts per image and class (give the predictor's limit).
    """

    def __init__(self, names: Sequence[str], max_det: int = 300):
        self.names = list(names)
        self.max_det = max_det
        # extended_summary gives the precision/recall arrays. Not class_metrics: with pycocotools its per-class mAP
        # (like its `map`) is summarized at 100 detections per image whatever max_detection_thresholds says
        # (torchmetrics issue #2560), so all APs are read from the arrays at our max_det instead.
        self.coco = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", iou_thresholds=COCO_IOUS.tolist(),
                                         rec_thresholds=RECALL_POINTS.tolist(), average="macro",
                                         max_detection_thresholds=[1, 10, max_det], extended_summary=True,
                                         backend="pycocotools")
        self.matches: list[ImageMatch] = []

    def update(self, predictions: Detections, truth: Truth) -> None:
        if not len(predictions.boxes) == len(predictions.classes) == len(predictions.confidences):
            raise ValueError(f"{len(predictions.boxes)} boxes but {len(predictions.classes)} classes and "
                             f"{len(predictions.confidences)} confidences")
        for found in (predictions, truth):
            if len(found) and not 0 <= found.classes.min() <= found.classes.max() < len(self.names):
                raise ValueError(f"class ids must be 0..{len(self.names) - 1}, got {sorted(set(found.classes))}")
        self.coco.update([torchmetrics_item(predictions.boxes, predictions.classes, predictions.confidences)],
                         [torchmetrics_item(truth.boxes, truth.classes)])
        self.matches.append(ImageMatch.of(predictions, truth))

    def compute(self, confidence: float | None = None) -> Evaluation:
        """All metrics; P, R, F1 and the confusion matrix at `confidence` (None: the one that maximizes F1)."""
        scores, true_positive, classes, counts = self.pooled()
        if confidence is None:
            confidence = best_confidence(scores, true_positive, classes, counts)
        precision, recall, f1 = (v[:, 0] for v in precision_recall_f1(np.array([confidence]), scores, true_positive,
                                                                      classes, counts))
        _, _, f1_curve = precision_recall_f1(CONFIDENCE_GRID, scores, true_positive, classes, counts)
        coco, ap50, ap50_95, ar, pr_precision = self.coco_summary(counts)
        return Evaluation(self.names, len(self.matches), coco, ap50, ap50_95, ar, counts, confidence, precision,
                          recall, f1, self.confusion_matrix(confidence), pr_precision, f1_curve)

    def pooled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All predictions' scores, true-positive flags and classes, and the truth boxes per class."""
        matches = self.matches
        scores = np.concatenate([[]] + [m.predictions.confidences for m in matches])
        true_positive = np.concatenate([[]] + [m.claimed >= 0 for m in matches]).astype(float)
        classes = np.concatenate([np.zeros(0, np.int64)] + [m.predictions.classes for m in matches])
        truth = np.concatenate([np.zeros(0, np.int64)] + [m.truth.classes for m in matches])
        return scores, true_positive, classes, np.bincount(truth, minlength=len(self.names))

    def coco_summary(self, counts: np.ndarray):
        """COCO numbers from torchmetrics' precision [T, R, K, A, M] and recall [T, K, A, M] arrays, at max_det."""
        n = len(self.names)
        result = self.coco.compute()
        precision = np.full((len(COCO_IOUS), len(RECALL_POINTS), n, len(AREAS)), -1.0)  # -1: undefined, as COCO
        recall = np.full((len(COCO_IOUS), n, len(AREAS)), -1.0)
        if "precision" in result:  # scattered to class ids: torchmetrics' K are the classes it has seen
            seen = np.atleast_1d(result["classes"].numpy())  # (torchmetrics squeezes a single class to a scalar)
            precision[:, :, seen] = result["precision"].numpy()[..., -1]
            recall[:, seen] = result["recall"].numpy()[..., -1]
        at = {"50": np.isclose(COCO_IOUS, 0.5), "75": np.isclose(COCO_IOUS, 0.75)}
        coco = {"map50_95": coco_mean(precision[..., 0]), "map50": coco_mean(precision[at["50"]][..., 0]),
                "map75": coco_mean(precision[at["75"]][..., 0])}
        coco |= {f"map_{area}": coco_mean(precision[..., a]) for area, a in AREAS.items() if a}
        coco |= {f"mar_{self.max_det}": coco_mean(recall[..., 0])}
        coco |= {f"mar_{area}": coco_mean(recall[..., a]) for area, a in AREAS.items() if a}
        ap50 = np.array([coco_mean(precision[at["50"]][:, :, k, 0]) for k in range(n)])
        ap50_95 = np.array([coco_mean(precision[:, :, k, 0]) for k in range(n)])
        ar = np.array([coco_mean(recall[:, k, 0]) for k in range(n)])
        pr_precision = np.where(counts[:, None] > 0, precision[at["50"]][0, :, :, 0].T, np.nan)
        return coco, ap50, ap50_95, ar, pr_precision

    def confusion_matrix(self, confidence: float) -> np.ndarray:
        background = len(self.names)
        matrix = MulticlassConfusionMatrix(num_classes=background + 1)
        for image in self.matches:
            true, predicted = image.confusion_pairs(confidence, background)
            if len(true):
                matrix.update(torch.from_numpy(predicted), torch.from_numpy(true))
        return matrix.compute().numpy()


def numbers_read_exactly(read: Sequence[tuple[str, Sequence[float]]], truth: Sequence[tuple[str, Sequence[float]]],
                         threshold: float = IOU_THRESHOLD) -> int:
    """How many true numbers (digits, xyxy box) were read with the same digits at the same place (box IoU >=
    threshold); one read number counts for at most one true number. `read` comes in reading order."""
    if not read or not truth:
        return 0
    ious = iou([box for _, box in read], [box for _, box in truth])
    same_digits = np.array([[r == t for t, _ in truth] for r, _ in read])
    return int((match(ious * same_digits, -np.arange(len(read), dtype=float), threshold) >= 0).sum())


def format_table(evaluation: Evaluation) -> str:
    """Per digit: AP50, AP50-95, P, R, F1 and truth count, under an 'all' row (means over present digits)."""
    e = evaluation
    rows = [f"{'class':>10} {'count':>6} {'AP50':>7} {'AP50-95':>7} {'P':>7} {'R':>7} {'F1':>7}",
            table_row("all", e.counts.sum(), e.coco["map50"], e.coco["map50_95"], e.mean(e.precision),
                      e.mean(e.recall), e.mean(e.f1))]
    for k, name in enumerate(e.names):
        has_truth = e.counts[k] > 0  # recall, and so F1, need truth boxes
        rows.append(table_row(name, e.counts[k], e.ap50[k], e.ap50_95[k], e.precision[k],
                              e.recall[k] if has_truth else math.nan, e.f1[k] if has_truth else math.nan))
    return "\n".join(rows)


def table_row(name: str, count: int, *values: float) -> str:
    return f"{name:>10} {int(count):6d} " + " ".join(f"{'-':>7}" if math.isnan(v) else f"{v:7.3f}" for v in values)


def plot_per_class(evaluation: Evaluation, path: Path, x: np.ndarray, curves: np.ndarray, class_label, mean_label: str,
                   marker: tuple | None = None, **axes) -> None:
    """One thin curve per digit present, their mean thick (optionally with a marked point), written to `path`."""
    import matplotlib.pyplot as plt  # pyplot only where a plot is drawn

    e = evaluation
    fig, ax = plt.subplots(figsize=(9, 6), tight_layout=True)
    for k in np.flatnonzero(e.present):
        ax.plot(x, curves[k], linewidth=1, label=class_label(k))
    if e.present.any():
        ax.plot(x, class_mean(curves, e.counts), linewidth=3, color="blue", label=mean_label)
        if marker is not None:
            ax.plot(*marker, "o", color="blue")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), **axes)
    ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_pr_curves(evaluation: Evaluation, path: Path) -> None:
    """Precision against recall at IoU 0.5 (COCO's interpolated precision), one curve per class plus their mean."""
    e = evaluation
    plot_per_class(e, path, RECALL_POINTS, e.pr_precision, lambda k: f"{e.names[k]}  AP50 {e.ap50[k]:.3f}",
                   f"all classes  mAP50 {e.coco['map50']:.3f}", xlabel="Recall", ylabel="Precision",
                   title="Precision-recall at IoU 0.5 (COCO 101-point interpolation)")


def plot_f1_curves(evaluation: Evaluation, path: Path) -> None:
    """F1 against the confidence threshold, one curve per class plus their mean, with the chosen threshold marked."""
    e = evaluation
    plot_per_class(e, path, CONFIDENCE_GRID, e.f1_curve, lambda k: f"{e.names[k]}  F1 {e.f1[k]:.2f}",
                   f"all classes  F1 {e.mean(e.f1):.2f} at {e.confidence:.3f}",
                   marker=([e.confidence], [e.mean(e.f1)]), xlabel="Confidence threshold", ylabel="F1",
                   title=f"F1 against confidence (IoU >= {IOU_THRESHOLD})")


def plot_confusion_matrix(evaluation: Evaluation, path: Path) -> None:
    """The confusion matrix twice, side by side: counts, and each true row normalized to 1 (torchmetrics' plot)."""
    import matplotlib.pyplot as plt
    from torchmetrics.utilities.plot import plot_confusion_matrix as draw

    e = evaluation
    counts = e.confusion.astype(float)
    rows = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    labels = e.names + ["background"]
    fig, axes = plt.subplots(1, 2, figsize=(22, 10), constrained_layout=True)
    for ax, matrix, title in ((axes[0], e.confusion, "counts"), (axes[1], normalized, "normalized by true class")):
        draw(torch.from_numpy(matrix), ax=ax, labels=labels, cmap="Blues")
        ax.set_title(f"Confusion matrix, {title} (confidence >= {e.confidence:.3f}, IoU >= {IOU_THRESHOLD})")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(evaluation: Evaluation, folder: Path, suffix: str = "") -> list[Path]:
    """PR_curve, F1_curve and confusion_matrix PNGs in `folder`, their names ending in `suffix`."""
    paths = []
    for stem, plot in (("PR_curve", plot_pr_curves), ("F1_curve", plot_f1_curves),
                       ("confusion_matrix", plot_confusion_matrix)):
        paths.append(folder / f"{stem}{suffix}.png")
        plot(evaluation, paths[-1])
    return paths
