"""Segmentation metrics: pixel classes (confusion matrix, accuracy, IoU, Dice) and particles.

Class 0 is background, class 1 is particle.  Confusion matrices have the true class along rows
and the predicted class along columns.  Instances are matched one-to-one (Hungarian assignment on
IoU) and a pair counts as a match when its IoU is at least the threshold (0.5 by default), as in
StarDist's ``matching.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

CLASS_NAMES = ("background", "particle")


class MetricsError(ValueError):
    """Inputs to a metric that do not fit together."""


def _check_same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if np.shape(a) != np.shape(b):
        raise MetricsError(f"arrays differ in shape: {np.shape(a)} vs {np.shape(b)}")


def confusion_matrix(truth: np.ndarray, prediction: np.ndarray, n_classes: int = 2) -> np.ndarray:
    """Pixel confusion matrix.

    Parameters
    ----------
    truth, prediction : ndarray
        Class maps of equal shape (bool masks or integers in ``[0, n_classes)``).
    n_classes : int
        Number of classes.

    Returns
    -------
    ndarray
        int64 (n_classes, n_classes); entry [i, j] counts pixels of true class i predicted as j.

    Raises
    ------
    MetricsError
        If the shapes differ.
    """
    _check_same_shape(truth, prediction)
    t = np.asarray(truth).astype(np.int64, copy=False).ravel()
    p = np.asarray(prediction).astype(np.int64, copy=False).ravel()
    counts = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return counts[: n_classes * n_classes].reshape(n_classes, n_classes)


def normalized_confusion_matrix(cm: np.ndarray) -> np.ndarray:
    """Confusion matrix with each row (true class) divided by its total.

    Parameters
    ----------
    cm : ndarray
        From :func:`confusion_matrix`.

    Returns
    -------
    ndarray
        float64; rows of absent classes are NaN.
    """
    totals = cm.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, cm / totals, np.nan)


def global_accuracy(cm: np.ndarray) -> float:
    """Fraction of all pixels classified correctly."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Per class, the fraction of its pixels classified correctly (the class recall)."""
    return np.diag(normalized_confusion_matrix(cm))


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """Per class, intersection over union (Jaccard index) of the true and predicted pixels."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def dice_per_class(cm: np.ndarray) -> np.ndarray:
    """Per class, the Dice coefficient (F1 score) of the true and predicted pixels."""
    tp = np.diag(cm).astype(np.float64)
    size = cm.sum(axis=0) + cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size > 0, 2 * tp / size, np.nan)


def pixel_metrics(cm: np.ndarray) -> dict[str, object]:
    """All pixel-level metrics of a confusion matrix, as a JSON-friendly dict.

    Parameters
    ----------
    cm : ndarray
        From :func:`confusion_matrix` (two classes: background, particle).

    Returns
    -------
    dict
        ``global_accuracy``, ``class_accuracy``, ``iou``, ``dice`` (dicts keyed by class name),
        ``particle_iou``, ``particle_dice``, ``confusion_matrix`` and
        ``confusion_matrix_normalized`` (nested lists).
    """
    names = CLASS_NAMES[: cm.shape[0]]

    def by_class(values: np.ndarray) -> dict[str, float]:
        return {name: float(v) for name, v in zip(names, values, strict=True)}

    iou, dice = iou_per_class(cm), dice_per_class(cm)
    return {
        "global_accuracy": global_accuracy(cm),
        "class_accuracy": by_class(per_class_accuracy(cm)),
        "iou": by_class(iou),
        "dice": by_class(dice),
        "particle_iou": float(iou[-1]),
        "particle_dice": float(dice[-1]),
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_normalized": normalized_confusion_matrix(cm).tolist(),
    }


class InstanceMatching(NamedTuple):
    """Result of :func:`match_instances`."""

    iou_threshold: float
    n_true: int
    n_predicted: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    mean_matched_iou: float
    #: (true label, predicted label, IoU) of every match.
    pairs: list[tuple[int, int, float]]


def instance_iou_matrix(true_labels: np.ndarray, predicted_labels: np.ndarray) -> np.ndarray:
    """IoU of every true instance with every predicted instance.

    Parameters
    ----------
    true_labels, predicted_labels : ndarray
        Integer label images of equal shape, 0 = background.

    Returns
    -------
    ndarray
        float64 (max true label + 1, max predicted label + 1); row and column 0 are background.
    """
    _check_same_shape(true_labels, predicted_labels)
    t = np.asarray(true_labels).astype(np.int64, copy=False).ravel()
    p = np.asarray(predicted_labels).astype(np.int64, copy=False).ravel()
    n_t, n_p = int(t.max(initial=0)) + 1, int(p.max(initial=0)) + 1
    overlap = np.bincount(t * n_p + p, minlength=n_t * n_p).reshape(n_t, n_p).astype(np.float64)
    union = overlap.sum(axis=1, keepdims=True) + overlap.sum(axis=0, keepdims=True) - overlap
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, overlap / union, 0.0)


def match_instances(
    true_labels: np.ndarray, predicted_labels: np.ndarray, iou_threshold: float = 0.5
) -> InstanceMatching:
    """Match predicted to true instances one-to-one and count hits and misses.

    Parameters
    ----------
    true_labels, predicted_labels : ndarray
        Integer label images of equal shape, 0 = background.
    iou_threshold : float
        A matched pair must have at least this IoU.

    Returns
    -------
    InstanceMatching
        tp (matched pairs), fp (unmatched predictions), fn (unmatched truths), precision, recall,
        F1, mean IoU of the matches and the pairs themselves.

    Raises
    ------
    MetricsError
        If the shapes differ.
    """
    from scipy.optimize import linear_sum_assignment

    iou = instance_iou_matrix(true_labels, predicted_labels)
    true_ids = np.setdiff1d(np.unique(true_labels), [0])
    pred_ids = np.setdiff1d(np.unique(predicted_labels), [0])
    pairs: list[tuple[int, int, float]] = []
    if true_ids.size and pred_ids.size:
        scores = iou[np.ix_(true_ids, pred_ids)]
        # Only candidate rows/columns with some overlap above threshold take part: keeps the
        # assignment small when thousands of particles are present.
        rows_ok = np.flatnonzero((scores >= iou_threshold).any(axis=1))
        cols_ok = np.flatnonzero((scores >= iou_threshold).any(axis=0))
        if rows_ok.size and cols_ok.size:
            sub = scores[np.ix_(rows_ok, cols_ok)]
            r, c = linear_sum_assignment(sub, maximize=True)
            for i, j in zip(r, c, strict=True):
                if sub[i, j] >= iou_threshold:
                    pairs.append(
                        (int(true_ids[rows_ok[i]]), int(pred_ids[cols_ok[j]]), float(sub[i, j]))
                    )
    tp = len(pairs)
    n_true, n_pred = int(true_ids.size), int(pred_ids.size)
    fp, fn = n_pred - tp, n_true - tp
    precision = tp / n_pred if n_pred else float("nan")
    recall = tp / n_true if n_true else float("nan")
    f1 = 2 * tp / (n_true + n_pred) if (n_true + n_pred) else float("nan")
    mean_iou = float(np.mean([p[2] for p in pairs])) if pairs else float("nan")
    return InstanceMatching(
        iou_threshold, n_true, n_pred, tp, fp, fn, precision, recall, f1, mean_iou, pairs
    )


def equivalent_diameters_nm(labels: np.ndarray, pixel_size_nm: float) -> dict[int, float]:
    """Equivalent-circle diameter of every labelled region.

    Parameters
    ----------
    labels : ndarray
        Integer label image, 0 = background.
    pixel_size_nm : float
        Pixel size in nm.

    Returns
    -------
    dict
        label -> diameter in nm (``2 * sqrt(area / pi)``).
    """
    areas = np.bincount(np.asarray(labels).astype(np.int64, copy=False).ravel())
    ids = np.flatnonzero(areas)
    ids = ids[ids > 0]
    return {int(i): float(2.0 * np.sqrt(areas[i] * pixel_size_nm**2 / np.pi)) for i in ids}


def diameter_errors(
    matching: InstanceMatching,
    predicted_labels: np.ndarray,
    pixel_size_nm: float,
    true_particles: pd.DataFrame,
) -> pd.DataFrame:
    """Equivalent-diameter error of every matched particle against the true table.

    Parameters
    ----------
    matching : InstanceMatching
        From :func:`match_instances` with the simulator's instance image as truth.
    predicted_labels : ndarray
        The predicted instance image used for the matching.
    pixel_size_nm : float
        Pixel size in nm.
    true_particles : DataFrame
        The simulator's particle table with ``particle_id`` (the instance label) and
        ``equivalent_diameter_nm`` (from the exact projected area).

    Returns
    -------
    DataFrame
        One row per match: ``particle_id``, ``predicted_label``, ``iou``,
        ``true_diameter_nm``, ``predicted_diameter_nm``, ``relative_error``
        ((predicted - true) / true).

    Raises
    ------
    MetricsError
        If the table lacks the needed columns.
    """
    missing = {"particle_id", "equivalent_diameter_nm"} - set(true_particles.columns)
    if missing:
        raise MetricsError(f"particle table lacks column(s) {sorted(missing)}")
    truth = dict(
        zip(
            true_particles["particle_id"].astype(int),
            true_particles["equivalent_diameter_nm"].astype(float),
            strict=True,
        )
    )
    predicted = equivalent_diameters_nm(predicted_labels, pixel_size_nm)
    rows = []
    for true_id, pred_id, iou in matching.pairs:
        if true_id not in truth:
            continue
        d_true, d_pred = truth[true_id], predicted[pred_id]
        rows.append((true_id, pred_id, iou, d_true, d_pred, (d_pred - d_true) / d_true))
    return pd.DataFrame(
        rows,
        columns=[
            "particle_id",
            "predicted_label",
            "iou",
            "true_diameter_nm",
            "predicted_diameter_nm",
            "relative_error",
        ],
    )


PIXEL_ERROR_KINDS = (
    "correct",
    "missed_particles",
    "edge_missed",
    "false_regions",
    "edge_added",
)


def pixel_error_breakdown(true_instances: np.ndarray, prediction: np.ndarray) -> dict[str, int]:
    """Where a semantic segmentation's wrong pixels are: whole particles or their outlines.

    Wrong pixels of a pixel IoU come in two kinds that call for different remedies: particles
    missed or invented altogether (sensitivity, distractors) and pixels at the outline of a found
    particle (edge placement, merged neighbours).

    Parameters
    ----------
    true_instances : ndarray
        Integer label image of the visible particles, 0 = background (the simulator's instance
        map restricted to its mask).
    prediction : ndarray
        Predicted particle mask (bool), same shape.

    Returns
    -------
    dict
        Pixel counts: ``correct`` (particle in both), ``missed_particles`` (particle pixels of true
        particles with no predicted pixel at all), ``edge_missed`` (other missed particle pixels),
        ``false_regions`` (predicted pixels in connected predicted regions that hold no true
        particle pixel), ``edge_added`` (other wrongly predicted pixels).
    """
    from scipy import ndimage as ndi

    _check_same_shape(true_instances, prediction)
    labels = np.asarray(true_instances).astype(np.int64, copy=False)
    truth = labels > 0
    predicted = np.asarray(prediction, dtype=bool)
    found = np.bincount(labels[predicted], minlength=int(labels.max(initial=0)) + 1) > 0
    found[0] = True
    missed = truth & ~predicted
    missed_particles = missed & ~found[labels]
    regions, _ = ndi.label(predicted)
    holds_truth = np.bincount(regions[truth], minlength=int(regions.max(initial=0)) + 1) > 0
    holds_truth[0] = True
    added = predicted & ~truth
    false_regions = added & ~holds_truth[regions]
    return {
        "correct": int((predicted & truth).sum()),
        "missed_particles": int(missed_particles.sum()),
        "edge_missed": int((missed & ~missed_particles).sum()),
        "false_regions": int(false_regions.sum()),
        "edge_added": int((added & ~false_regions).sum()),
    }


def summarize_pixel_errors(counts: dict[str, int]) -> dict[str, float]:
    """Pooled :func:`pixel_error_breakdown` counts as fractions of the union, with two IoUs.

    Returns
    -------
    dict
        Each kind as a fraction of the union of truth and prediction (they sum to 1), the
        ``particle_iou`` and ``iou_with_perfect_outlines``: the IoU if every outline error were
        corrected and only whole missed or invented particles remained wrong.
    """
    union = sum(counts[k] for k in PIXEL_ERROR_KINDS)
    if union == 0:
        raise MetricsError("no particle pixel in truth or prediction")
    summary = {k: counts[k] / union for k in PIXEL_ERROR_KINDS}
    summary["particle_iou"] = counts["correct"] / union
    kept = counts["correct"] + counts["edge_missed"]
    summary["iou_with_perfect_outlines"] = kept / (
        kept + counts["missed_particles"] + counts["false_regions"]
    )
    return summary


class BoxMatching(NamedTuple):
    """Detections matched to hand-drawn boxes (see :func:`match_points_to_boxes`)."""

    n_boxes: int
    n_points: int
    tp: int
    precision: float
    recall: float
    #: (box index, point index) of every match.
    pairs: list[tuple[int, int]]


def match_points_to_boxes(points_xy: np.ndarray, boxes_xyxy: np.ndarray) -> BoxMatching:
    """Match particle centroids to hand-drawn boxes one-to-one.

    Real micrographs are often labelled with boxes only (YOLO-style), so a found particle counts
    as that box's particle when its centroid lies inside the box; where several centroids fall in
    one box, or one centroid in several overlapping boxes, the assignment (Hungarian) pairs each
    box with at most one centroid, preferring the one nearest the box centre (distance in units of
    the box's half size). Unmatched centroids are false detections, unmatched boxes missed (or
    merged into a neighbour's region).

    Parameters
    ----------
    points_xy : ndarray
        (N, 2) centroids, x then y, in pixels.
    boxes_xyxy : ndarray
        (M, 4) boxes as x0, y0, x1, y1 in pixels.

    Returns
    -------
    BoxMatching
        Counts, precision (matched / points), recall (matched / boxes) and the pairs.

    Raises
    ------
    MetricsError
        If the arrays do not have those shapes, or a box has x1 < x0 or y1 < y0.
    """
    from scipy.optimize import linear_sum_assignment

    points = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.ndim != 2 or (boxes.size and boxes.shape[1] != 4):
        raise MetricsError(f"boxes must have shape (M, 4), got {boxes.shape}")
    boxes = boxes.reshape(-1, 4)
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise MetricsError("every box needs x1 >= x0 and y1 >= y0")
    pairs: list[tuple[int, int]] = []
    if len(points) and len(boxes):
        x, y = points[:, 0][None, :], points[:, 1][None, :]
        x0, y0, x1, y1 = (boxes[:, k][:, None] for k in range(4))
        inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        half_w = np.maximum((x1 - x0) / 2, 0.5)
        half_h = np.maximum((y1 - y0) / 2, 0.5)
        distance = np.hypot((x - (x0 + x1) / 2) / half_w, (y - (y0 + y1) / 2) / half_h)
        rows = np.flatnonzero(inside.any(axis=1))
        cols = np.flatnonzero(inside.any(axis=0))
        if rows.size:
            # Outside pairs cost more than any inside pair can (inside distance <= sqrt 2).
            cost = np.where(inside, distance, 10.0)[np.ix_(rows, cols)]
            r, c = linear_sum_assignment(cost)
            pairs = [
                (int(rows[i]), int(cols[j])) for i, j in zip(r, c, strict=True) if cost[i, j] < 10
            ]
    tp = len(pairs)
    n_boxes, n_points = len(boxes), len(points)
    return BoxMatching(
        n_boxes,
        n_points,
        tp,
        tp / n_points if n_points else float("nan"),
        tp / n_boxes if n_boxes else float("nan"),
        sorted(pairs),
    )
