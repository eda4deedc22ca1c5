"""Particle counts on the 33 real supported-catalyst micrographs against the hand-drawn boxes.

The images (../shared/data/supported-catalysts, MIT licence, Genc et al. 2025) are uncalibrated
JPEG exports, so every image is analysed at a nominal pixel size; counts do not depend on it except
through the despeckle and marker limits, which are set here in pixels' worth of nm. Particles cut
by the image border are counted (``edge="flag"``) because the hand boxes include them.

Usage::

    python benchmarks/real_counts.py --segmenter threshold \
        --out benchmarks/results/real_counts_threshold.json
    python benchmarks/real_counts.py --segmenter model \
        --out benchmarks/results/real_counts_model.json

Prints one row per image (hand count, predicted count, ratio) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from nanomorph.cli import (
    PRECISION_CHOICES,
    SEPARATION_CHOICES,
    non_negative_float,
    positive_float,
    probability,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "supported-catalysts"

# Bright-field TEM images (dark particles), judged by eye; the rest are HAADF-STEM (bright
# particles). Exact names, not prefixes: PtC3 and PtCo are HAADF although their names start
# like the bright-field PtC1/PtC2 (a prefix rule gave the threshold the wrong polarity there).
BRIGHT_FIELD = frozenset({"PtC1", "PtC2", "Pt_carbon1", "Pt_carbon2", "PtCo1", "PtCo3"})


def is_bright_field(name: str) -> bool:
    return name in BRIGHT_FIELD


def hand_boxes(name: str) -> np.ndarray:
    """YOLO boxes (cx, cy, w, h) normalised to the image size."""
    rows = [
        line.split()
        for line in (DATA / "labels" / f"{name}.txt").read_text().splitlines()
        if line.strip()
    ]
    return np.array([[float(v) for v in r[1:5]] for r in rows]).reshape(-1, 4)


def particlespy_rows(
    segmenter_kind: str,
    model,
    overlays: Path | None,
    test_time_flips: bool = False,
    declare_polarity: bool = False,
    flatten_support_px: float | None = None,
    min_peak_probability: float | None = None,
    precision: str = "auto",
    separation: str = "uecs",
) -> list[dict]:
    """Counts and sizes on the two calibrated ParticleSpy HAADF images (no hand count exists)."""
    from nanomorph.io import read_micrographs
    from nanomorph.pipeline import AnalysisParameters, analyze_micrograph, make_segmenter

    folder = DATA.parent / "particlespy-haadf"
    rows = []
    for filename in ("JEOL HAADF Image.dm4", "SiO2 HAADF Image.hspy"):
        path = folder / filename
        if not path.exists():
            continue
        (micrograph,) = read_micrographs(path)
        segmenter = make_segmenter(
            segmenter_kind,
            model=model,
            polarity="bright",
            precision=precision,
            test_time_flips=test_time_flips,
            min_peak_probability=min_peak_probability,
            flatten_support_px=flatten_support_px,
        )
        params = AnalysisParameters(
            edge="flag",
            polarity="bright" if declare_polarity else "auto",
            separation=separation,
        )
        result = analyze_micrograph(micrograph, segmenter, params)
        d = result.particles["equivalent_diameter_nm"]
        rows.append(
            {
                "image": filename,
                "pixel_size_nm": micrograph.pixel_size_nm,
                "predicted_count": int(len(d)),
                "n_separated": int(result.particles["separated"].sum()),
                "mean_equivalent_diameter_nm": float(d.mean()) if len(d) else None,
                "sd_equivalent_diameter_nm": float(d.std()) if len(d) > 1 else None,
            }
        )
        if overlays is not None:
            from nanomorph.plots import save_overlay

            save_overlay(
                overlays / f"{path.stem}.png",
                micrograph.image,
                result.labels,
                particles=result.particles,
            )
    return rows


def boxes_on_mask(mask: np.ndarray, boxes_xyxy: np.ndarray) -> float:
    """Fraction of boxes whose central half holds at least one pixel of the mask."""
    if not len(boxes_xyxy):
        return float("nan")
    h, w = mask.shape
    hits = 0
    for x0, y0, x1, y1 in boxes_xyxy:
        cx, cy, qw, qh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4, (y1 - y0) / 4
        r0, r1 = max(int(cy - qh), 0), min(int(np.ceil(cy + qh)), h)
        c0, c1 = max(int(cx - qw), 0), min(int(np.ceil(cx + qw)), w)
        hits += bool(mask[r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)].any())
    return hits / len(boxes_xyxy)


def size_agreement(rows: list[dict]) -> dict:
    """How well each image's median found size matches its median hand-box size.

    Sizes are the geometric means of the two sides of a box and of the minimum and maximum Feret
    diameters of a found particle, in pixels, so the comparison needs no calibration.
    """
    ratios = np.array(
        [
            r["predicted_median_feret_px"] / r["hand_median_size_px"]
            for r in rows
            if r.get("predicted_median_feret_px") and r.get("hand_median_size_px")
        ]
    )
    if not len(ratios):
        return {"n_size_within_25_percent": 0, "median_size_ratio": float("nan")}
    return {
        "n_size_within_25_percent": int(np.sum(np.abs(ratios - 1) <= 0.25)),
        "median_size_ratio": float(np.median(ratios)),
        "median_abs_log_size_ratio": float(np.median(np.abs(np.log(ratios)))),
    }


def count_image(name: str, segmenter, params, pixel_size_nm: float, overlays=None) -> dict:
    from nanomorph.io import Micrograph
    from nanomorph.pipeline import analyze_micrograph
    from nanomorph.segment.metrics import match_points_to_boxes

    path = DATA / "images" / f"{name}.jpg"
    with Image.open(path) as img:
        grey = np.asarray(img.convert("L"), dtype=np.float32)
    micrograph = Micrograph(grey, pixel_size_nm, path, calibration_source="nominal")
    t0 = time.perf_counter()
    result = analyze_micrograph(micrograph, segmenter, params)
    seconds = time.perf_counter() - t0
    boxes = hand_boxes(name)
    h, w = grey.shape
    if overlays is not None:
        from nanomorph.plots import save_overlay

        save_overlay(overlays / f"{name}.png", grey, result.labels, particles=result.particles)
    hand_sizes = np.sqrt(boxes[:, 2] * w * boxes[:, 3] * h)
    found = result.particles
    boxes_xyxy = np.column_stack(
        [
            (boxes[:, 0] - boxes[:, 2] / 2) * w,
            (boxes[:, 1] - boxes[:, 3] / 2) * h,
            (boxes[:, 0] + boxes[:, 2] / 2) * w,
            (boxes[:, 1] + boxes[:, 3] / 2) * h,
        ]
    )
    centroids = found[["centroid_x_nm", "centroid_y_nm"]].to_numpy() / pixel_size_nm
    matching = match_points_to_boxes(centroids, boxes_xyxy)
    return {
        "image": name,
        "modality": "bf" if is_bright_field(name) else "haadf",
        "shape": [h, w],
        "hand_count": int(len(boxes)),
        "predicted_count": int(len(found)),
        "ratio": float(len(found) / max(len(boxes), 1)),
        "hand_median_size_px": float(np.median(hand_sizes)) if len(boxes) else None,
        "predicted_median_feret_px": float(
            np.median(np.sqrt(found["feret_min_nm"] * found["feret_max_nm"])) / pixel_size_nm
        )
        if len(found)
        else None,
        # Where the count goes wrong: boxes with a particle's centroid (one-to-one), boxes whose
        # central half the segmentation touches at all (found, but perhaps merged), and found
        # particles in no box (false detections, or hand-missed particles).
        "boxes_matched": matching.tp,
        "box_recall": matching.recall,
        "box_precision": matching.precision,
        "boxes_on_mask": boxes_on_mask(result.semantic_mask, boxes_xyxy),
        "seconds": seconds,
    }


def describe_for_results(segmenter) -> dict:
    """The segmenter's description as committed: no machine-specific paths, no per-image knob."""
    described = dict(segmenter.describe())
    folder = described.get("model_folder")
    if folder:
        try:
            described["model_folder"] = str(Path(folder).resolve().relative_to(REPO))
        except ValueError:
            pass
    if "polarity" in described:
        described["polarity"] = "per image: dark for bright field, bright for HAADF (see images)"
    if described.get("particle_diameter_nm") is not None:
        described["particle_diameter_nm"] = "per image (see declared_particle_diameter)"
    return described


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segmenter", choices=("model", "threshold"), default="model")
    parser.add_argument("--model", default=None)
    parser.add_argument(
        "--pixel-size",
        type=positive_float,
        default=0.1,
        help="nominal nm/px (images are uncalibrated; default 0.1)",
    )
    parser.add_argument("--images", nargs="*", help="subset of image names")
    parser.add_argument(
        "--test-time-flips",
        action="store_true",
        help="average the network over each image and its three flips",
    )
    parser.add_argument(
        "--declare-polarity",
        action="store_true",
        help="tell the analysis each image's polarity, which drops found particles of the "
        "opposite contrast (AnalysisParameters.polarity)",
    )
    parser.add_argument(
        "--flatten-support",
        type=non_negative_float,
        default=None,
        metavar="SIGMA_PX",
        help="override the model's support flattening (0: off; default: the model's setting)",
    )
    parser.add_argument(
        "--min-peak-probability",
        type=probability,
        default=None,
        metavar="P",
        help="override the model's confident-region level (0: keep every region; default: the "
        "model's setting)",
    )
    parser.add_argument(
        "--separation",
        choices=SEPARATION_CHOICES,
        default="uecs",
        help="how the analysis splits overlapping particles (default uecs, the reference "
        "method's); recorded in the JSON",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="network arithmetic (default auto: bf16 only where the CPU computes it natively); "
        "recorded in the JSON",
    )
    parser.add_argument(
        "--declare-particle-diameter",
        action="store_true",
        help="tell the network each image's typical particle diameter: the median hand box's "
        "sqrt(width x height) at the nominal pixel size, as a user who knows the size would "
        "(analyze --particle-diameter)",
    )
    parser.add_argument(
        "--diameter-error",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="with --declare-particle-diameter: declare FACTOR times that size, to see how much "
        "a wrong guess costs (default 1)",
    )
    parser.add_argument(
        "--tile-size",
        type=int,
        default=None,
        metavar="PX",
        help="the network's tile side (default: the model's); recorded in the JSON",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--overlays",
        type=Path,
        default=None,
        help="folder for overlay PNGs to look at (not committed)",
    )
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"{DATA} not found: nothing to measure", file=sys.stderr)
        return 1

    from nanomorph.pipeline import AnalysisParameters, make_segmenter

    gt = pd.read_csv(DATA / "gt_summary.csv")
    names = args.images or list(gt["image"])
    if args.declare_particle_diameter and args.segmenter != "model":
        parser.error("--declare-particle-diameter needs --segmenter model")
    if not args.diameter_error > 0:
        parser.error("--diameter-error must be a positive factor")
    hand_size_px = dict(zip(gt["image"], gt["median_sqrt_wh_px"], strict=True))
    if args.overlays is not None:
        args.overlays.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        polarity = "dark" if is_bright_field(name) else "bright"
        params = AnalysisParameters(
            edge="flag",
            polarity=polarity if args.declare_polarity else "auto",
            separation=args.separation,
        )
        segmenter = make_segmenter(
            args.segmenter,
            model=args.model,
            polarity=polarity,
            precision=args.precision,
            test_time_flips=args.test_time_flips,
            min_peak_probability=args.min_peak_probability,
            flatten_support_px=args.flatten_support,
            particle_diameter_nm=(
                float(hand_size_px[name]) * args.pixel_size * args.diameter_error
                if args.declare_particle_diameter
                else None
            ),
            tile_size=args.tile_size,
        )
        row = count_image(name, segmenter, params, args.pixel_size, args.overlays)
        rows.append(row)
        print(
            f"{name:14s} {row['modality']:5s} hand {row['hand_count']:4d}  "
            f"found {row['predicted_count']:4d}  ratio {row['ratio']:.2f}  "
            f"box recall {row['box_recall']:.2f} precision {row['box_precision']:.2f} "
            f"on mask {row['boxes_on_mask']:.2f}  "
            f"({row['seconds']:.1f} s)",
            flush=True,
        )
    ratios = np.array([r["ratio"] for r in rows])
    within = int(np.sum(np.abs(ratios - 1) <= 0.25))
    sizes = size_agreement(rows)
    summary = {
        "segmenter": args.segmenter,
        "model": args.model,
        "nominal_pixel_size_nm": args.pixel_size,
        "test_time_flips": args.test_time_flips,
        "declared_polarity": args.declare_polarity,
        "separation": args.separation,
        "declared_particle_diameter": (
            f"median hand box x nominal pixel size x {args.diameter_error:g}"
            if args.declare_particle_diameter
            else None
        ),
        "flatten_support_px": args.flatten_support,
        "min_peak_probability": args.min_peak_probability,
        "segmentation": describe_for_results(segmenter) if rows else None,
        "n_images": len(rows),
        "n_within_25_percent": within,
        "median_ratio": float(np.median(ratios)),
        "median_abs_log_ratio": float(np.median(np.abs(np.log(np.maximum(ratios, 1e-3))))),
        "box_recall": float(
            sum(r["boxes_matched"] for r in rows) / max(sum(r["hand_count"] for r in rows), 1)
        ),
        "box_precision": float(
            sum(r["boxes_matched"] for r in rows) / max(sum(r["predicted_count"] for r in rows), 1)
        ),
        "boxes_on_mask": float(
            sum(r["boxes_on_mask"] * r["hand_count"] for r in rows)
            / sum(r["hand_count"] for r in rows)
        ),
        **sizes,
        "images": rows,
        "particlespy": particlespy_rows(
            args.segmenter,
            args.model,
            args.overlays,
            args.test_time_flips,
            args.declare_polarity,
            args.flatten_support,
            args.min_peak_probability,
            args.precision,
            args.separation,
        ),
    }
    for r in summary["particlespy"]:
        print(
            f"{r['image']}: {r['predicted_count']} particles, {r['n_separated']} separated, "
            f"equivalent diameter {r['mean_equivalent_diameter_nm']} nm"
        )
    print(
        f"\n{within} of {len(rows)} images within ±25 % of the hand count; "
        f"median ratio {summary['median_ratio']:.2f}; all boxes: recall "
        f"{summary['box_recall']:.2f}, precision {summary['box_precision']:.2f}, "
        f"on the mask {summary['boxes_on_mask']:.2f}; median particle size within ±25 % of "
        f"the hand boxes' on {sizes['n_size_within_25_percent']} images (median ratio "
        f"{sizes['median_size_ratio']:.2f})"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
