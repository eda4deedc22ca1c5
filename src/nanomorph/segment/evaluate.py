"""Scoring any segmenter on simulated micrographs with exact ground truth, scenario by scenario.

A segmenter is any callable ``(image, pixel_size_nm) -> bool mask``: a
:class:`~nanomorph.segment.inference.NetworkSegmenter`, or
:func:`nanomorph.segment.threshold.segment_threshold`, so the model card can compare them on the
same images.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nanomorph.segment.metrics import (
    CLASS_NAMES,
    confusion_matrix,
    diameter_errors,
    equivalent_diameters_nm,
    match_instances,
    normalized_confusion_matrix,
    pixel_metrics,
)

Segmenter = Callable[[np.ndarray, float], np.ndarray]
InstanceFunction = Callable[[np.ndarray, float], np.ndarray]

#: Pass as ``segmenter`` to score the simulator's exact mask, or as ``instances_fn`` to take the
#: simulator's own instance map (each pixel to the uppermost particle) as the particles: the
#: ceilings of the analysis after segmentation and of any split into visible parts.
TRUTH = "truth"

#: Scenarios scored by default (the simulator's "mixed" is the training mixture, not a test case).
DEFAULT_SCENARIOS = ("isolated", "overlapping", "ultrasmall_low_contrast", "haadf", "faceted")


class EvaluationError(ValueError):
    """An evaluation setting or data set that cannot be used."""


def connected_components(mask: np.ndarray, pixel_size_nm: float) -> np.ndarray:
    """Instances as 8-connected components of a mask (the default instance function).

    Parameters
    ----------
    mask : ndarray
        bool mask.
    pixel_size_nm : float
        Unused; present so that a separation function can take its place.

    Returns
    -------
    ndarray
        int32 labels.
    """
    from skimage.measure import label

    return label(mask, connectivity=2).astype(np.int32)


def simulated_test_set(
    scenarios: Sequence[str] = DEFAULT_SCENARIOS,
    seed: int = 20240601,
    n_per_scenario: int = 10,
    shape: tuple[int, int] = (512, 512),
    overrides: dict[str, Any] | None = None,
) -> Iterable[Any]:
    """Simulated micrographs for evaluation, ``n_per_scenario`` of each scenario.

    Image i of a scenario is simulated from ``SeedSequence([seed, k, i])``, where k is the
    scenario's position in `nanomorph.simulate.SCENARIOS` (not in ``scenarios``): a scenario's
    images are the same whichever other scenarios are evaluated with it, and a new set needs a new
    ``seed``. The streams are disjoint from the integer seeds the training pool uses.

    Parameters
    ----------
    scenarios : sequence of str
        Simulator scenario names.
    seed : int
        Base seed of the test set.
    n_per_scenario : int
        Images per scenario.
    shape : tuple of int
        Image shape in pixels.
    overrides : dict, optional
        Simulation settings fixed for every image (``simulate_micrograph``'s overrides, e.g.
        ``{"dose": 1e7}``). They replace the drawn values after the drawing, so each image keeps
        the scene of the same image without them (the same particles, support and optics); what
        follows from the recorded image changes with it, such as the simulator's boost of
        particles it finds too faint in it.

    Yields
    ------
    nanomorph.simulate.SimulatedMicrograph
    """
    from nanomorph.simulate import SCENARIOS, UnknownScenarioError, simulate_micrograph

    for scenario in scenarios:
        if scenario not in SCENARIOS:
            raise UnknownScenarioError(
                f"unknown scenario {scenario!r}; expected one of {SCENARIOS}"
            )
        k = SCENARIOS.index(scenario)
        for i in range(n_per_scenario):
            yield simulate_micrograph(
                np.random.SeedSequence([seed, k, i]),
                shape=shape,
                scenario=scenario,
                **(overrides or {}),
            )


def plot_confusion_matrix(cm_normalized: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Save a normalised confusion matrix as a PNG heat map with percentages.

    Parameters
    ----------
    cm_normalized : ndarray
        Rows = true class, columns = predicted class, rows summing to 1.
    path : str or Path
        Output PNG.
    title : str
        Figure title.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = CLASS_NAMES[: cm_normalized.shape[0]]
    fig, ax = plt.subplots(figsize=(3.6, 3.2), dpi=150)
    ax.imshow(np.nan_to_num(cm_normalized), cmap="Blues", vmin=0, vmax=1)
    for i in range(cm_normalized.shape[0]):
        for j in range(cm_normalized.shape[1]):
            value = cm_normalized[i, j]
            ax.text(
                j,
                i,
                "n/a" if np.isnan(value) else f"{100 * value:.1f} %",
                ha="center",
                va="center",
                color="white" if value > 0.5 else "black",
            )
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _summarise(
    cm: np.ndarray, counts: dict[str, int], errors: pd.DataFrame, means: list[tuple[float, float]]
) -> dict[str, Any]:
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    n_true, n_pred = tp + fn, tp + fp
    rel = errors["relative_error"].to_numpy() if len(errors) else np.array([])
    true_means = np.array([m[0] for m in means], dtype=float)
    pred_means = np.array([m[1] for m in means], dtype=float)
    ok = np.isfinite(true_means) & np.isfinite(pred_means)
    return {
        "pixel": pixel_metrics(cm),
        "instance": {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "n_true": n_true,
            "n_predicted": n_pred,
            "precision": tp / n_pred if n_pred else float("nan"),
            "recall": tp / n_true if n_true else float("nan"),
            "f1": 2 * tp / (n_true + n_pred) if n_true + n_pred else float("nan"),
        },
        "diameter": {
            "n_matched": int(rel.size),
            "mean_relative_error": float(rel.mean()) if rel.size else float("nan"),
            "median_relative_error": float(np.median(rel)) if rel.size else float("nan"),
            "mean_absolute_relative_error": float(np.abs(rel).mean()) if rel.size else float("nan"),
            # Per image: (mean predicted diameter - mean true diameter) / mean true diameter.
            "mean_image_mean_diameter_error": float(
                np.mean((pred_means[ok] - true_means[ok]) / true_means[ok])
            )
            if ok.any()
            else float("nan"),
        },
    }


def evaluate(
    segmenter: Segmenter,
    scenarios: Sequence[str] = DEFAULT_SCENARIOS,
    seed: int = 20240601,
    n_per_scenario: int = 10,
    out_dir: str | Path | None = None,
    shape: tuple[int, int] = (512, 512),
    dataset: Iterable[Any] | None = None,
    instances_fn: InstanceFunction | None = None,
    iou_threshold: float = 0.5,
    name: str = "",
    progress: bool = True,
    item_instances_fn: Callable[[np.ndarray, Any], np.ndarray] | None = None,
    segmentation: dict[str, Any] | None = None,
    simulation_overrides: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
    item_segmenter_fn: Callable[[Any], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Score a segmenter per scenario: pixel classes, particles found and their diameters.

    Parameters
    ----------
    segmenter : callable or "truth"
        ``(image, pixel_size_nm) -> bool mask``; :data:`TRUTH` uses each image's exact mask,
        so that the scores are those of the despeckle, separation and measurement alone.
    scenarios : sequence of str
        Simulator scenarios to score (ignored when ``dataset`` is given).
    seed : int
        Seed of the simulated test set (use one the training never saw).
    n_per_scenario : int
        Images per scenario.
    out_dir : str or Path, optional
        If given: ``metrics.json``, ``per_image.csv``, and ``confusion_<scenario>.png`` /
        ``.json`` (normalised confusion matrices) are written there.
    shape : tuple of int
        Shape of the simulated images.
    dataset : iterable, optional
        Items with ``image``, ``mask``, ``instances``, ``particles`` (DataFrame with
        ``particle_id``, ``equivalent_diameter_nm``), ``pixel_size_nm`` and ``scenario``
        attributes, used instead of simulating.
    instances_fn : callable or "truth", optional
        ``(mask, pixel_size_nm) -> labels`` turning the predicted mask into particles (e.g. the
        pipeline's separation); default: connected components. :data:`TRUTH` takes the
        simulator's instance map instead (visible parts, perfectly split), whatever the mask.
    item_instances_fn : callable, optional
        ``(mask, item) -> labels``, used instead of `instances_fn` by an analysis that needs
        more of the test image than its pixel size (its ``image`` or ``modality``).
    item_segmenter_fn : callable, optional
        ``item -> bool mask``, used instead of ``segmenter(image, pixel_size_nm)`` by a
        segmentation told more about each test image (e.g. its typical particle diameter, as a
        user would declare it); ``segmenter`` is then only described.
    segmentation : dict, optional
        How the segmenter was set up (its ``describe()``), recorded as ``segmentation``.
    analysis : dict, optional
        How the particles were made from the mask (e.g. the separation method), recorded as
        ``analysis``.
    simulation_overrides : dict, optional
        Simulation settings fixed for every test image (see :func:`simulated_test_set`), e.g.
        the dose, to score the same scenes under other recording conditions; recorded as
        ``simulation_overrides``. Not allowed with ``dataset``.
    iou_threshold : float
        Minimum IoU of a matched particle pair.
    name : str
        Segmenter name recorded in the output.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``{"segmenter": name, "scenarios": {scenario: {"n_images", "pixel", "instance",
        "diameter", "seconds_per_image"}}, "overall": {...}}`` where ``pixel`` is
        :func:`nanomorph.segment.metrics.pixel_metrics` of the summed confusion matrix,
        ``instance`` has tp/fp/fn/precision/recall/f1 and ``diameter`` the relative
        equivalent-diameter errors of matched particles.

    Raises
    ------
    EvaluationError
        If the data set is empty or a prediction has the wrong shape.
    """
    from tqdm.auto import tqdm

    for given, what in ((segmenter, "segmenter"), (instances_fn, "instances_fn")):
        if isinstance(given, str) and given != TRUTH:
            raise EvaluationError(f"{what} must be a callable or {TRUTH!r}, got {given!r}")
    instances_fn = instances_fn or connected_components
    if dataset is not None and simulation_overrides:
        raise EvaluationError("simulation_overrides apply to simulated test sets, not to a dataset")
    if dataset is None:
        dataset = simulated_test_set(scenarios, seed, n_per_scenario, shape, simulation_overrides)
        total = len(scenarios) * n_per_scenario
    else:
        total = len(dataset) if hasattr(dataset, "__len__") else None  # type: ignore[arg-type]

    per_scenario: dict[str, dict[str, Any]] = {}
    rows = []
    for index, item in enumerate(
        tqdm(dataset, total=total, desc=f"evaluating {name}".strip(), disable=not progress)
    ):
        start = time.perf_counter()
        if isinstance(segmenter, str):
            prediction = np.asarray(item.mask, dtype=bool)
        elif item_segmenter_fn is not None:
            prediction = np.asarray(item_segmenter_fn(item), dtype=bool)
        else:
            prediction = np.asarray(segmenter(item.image, item.pixel_size_nm), dtype=bool)
        seconds = time.perf_counter() - start
        if prediction.shape != np.shape(item.mask):
            raise EvaluationError(
                f"segmenter returned shape {prediction.shape} for an image of shape "
                f"{np.shape(item.mask)}"
            )
        if item_instances_fn is not None:
            predicted_labels = item_instances_fn(prediction, item)
        elif isinstance(instances_fn, str):
            predicted_labels = np.asarray(item.instances)
        else:
            predicted_labels = instances_fn(prediction, item.pixel_size_nm)
        matching = match_instances(item.instances, predicted_labels, iou_threshold)
        errors = diameter_errors(matching, predicted_labels, item.pixel_size_nm, item.particles)
        cm = confusion_matrix(item.mask, prediction)
        predicted_diameters = list(
            equivalent_diameters_nm(predicted_labels, item.pixel_size_nm).values()
        )
        true_mean = (
            float(item.particles["equivalent_diameter_nm"].mean())
            if len(item.particles)
            else np.nan
        )
        pred_mean = float(np.mean(predicted_diameters)) if predicted_diameters else np.nan
        acc = per_scenario.setdefault(
            item.scenario,
            {
                "cm": np.zeros((2, 2), np.int64),
                "tp": 0,
                "fp": 0,
                "fn": 0,
                "errors": [],
                "means": [],
                "seconds": [],
            },
        )
        acc["cm"] += cm
        acc["tp"] += matching.tp
        acc["fp"] += matching.fp
        acc["fn"] += matching.fn
        acc["errors"].append(errors)
        acc["means"].append((true_mean, pred_mean))
        acc["seconds"].append(seconds)
        rows.append(
            {
                "index": index,
                "scenario": item.scenario,
                "pixel_size_nm": item.pixel_size_nm,
                "particle_iou": pixel_metrics(cm)["particle_iou"],
                # pixel counts, so that images can be pooled by any grouping afterwards
                "particle_pixels_true_positive": int(cm[1, 1]),
                "particle_pixels_false_positive": int(cm[0, 1]),
                "particle_pixels_false_negative": int(cm[1, 0]),
                "median_true_diameter_px": float(
                    np.median(item.particles["equivalent_diameter_nm"]) / item.pixel_size_nm
                )
                if len(item.particles)
                else np.nan,
                "n_true": matching.n_true,
                "n_predicted": matching.n_predicted,
                "tp": matching.tp,
                "precision": matching.precision,
                "recall": matching.recall,
                "mean_true_diameter_nm": true_mean,
                "mean_predicted_diameter_nm": pred_mean,
                "seconds": seconds,
            }
        )
    if not rows:
        raise EvaluationError("the evaluation data set is empty")

    def summary(accs: list[dict[str, Any]]) -> dict[str, Any]:
        cm = sum((a["cm"] for a in accs), np.zeros((2, 2), np.int64))
        counts = {k: sum(a[k] for a in accs) for k in ("tp", "fp", "fn")}
        frames = [e for a in accs for e in a["errors"] if len(e)]
        errors = pd.concat(frames) if frames else pd.DataFrame(columns=["relative_error"])
        means = [m for a in accs for m in a["means"]]
        seconds = [s for a in accs for s in a["seconds"]]
        out = _summarise(cm, counts, errors, means)
        out["n_images"] = len(seconds)
        out["seconds_per_image"] = float(np.mean(seconds))
        return out

    result: dict[str, Any] = {
        "segmenter": name,
        "seed": seed,
        "iou_threshold": iou_threshold,
        "scenarios": {s: summary([a]) for s, a in per_scenario.items()},
        "overall": summary(list(per_scenario.values())),
    }
    if segmentation is not None:
        result["segmentation"] = segmentation
    if analysis is not None:
        result["analysis"] = dict(analysis)
    if simulation_overrides:
        result["simulation_overrides"] = dict(simulation_overrides)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for scenario, scores in [*result["scenarios"].items(), ("overall", result["overall"])]:
            cm = np.asarray(scores["pixel"]["confusion_matrix"])
            normalized = normalized_confusion_matrix(cm)
            plot_confusion_matrix(
                normalized, out_dir / f"confusion_{scenario}.png", f"{name} {scenario}".strip()
            )
            (out_dir / f"confusion_{scenario}.json").write_text(
                json.dumps(
                    {
                        "classes": list(CLASS_NAMES),
                        "counts": cm.tolist(),
                        "normalized": normalized.tolist(),
                    },
                    indent=2,
                )
                + "\n"
            )
        (out_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        pd.DataFrame(rows).to_csv(out_dir / "per_image.csv", index=False)
    return result
