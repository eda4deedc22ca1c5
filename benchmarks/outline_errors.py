"""Where the network's particle IoU is lost on the simulated test set: whole particles or outlines.

For every scenario of the fixed test set (``nanomorph evaluate``'s, seed 20240601) this splits the
wrong pixels of the network's mask into missed particles, missed outline pixels, invented regions
and added outline pixels (`nanomorph.segment.metrics.pixel_error_breakdown`), gives the IoU with
every outline corrected, and the IoU at other probability thresholds. With ``--head-ceiling`` it
also fits logits on a grid as coarse as DeepLabV3+'s output (a quarter of the network's input,
which is itself block-averaged for fine pixel sizes) to the exact mask through bilinear
upsampling: the IoU that output resolution allows, whatever the network learns. It also scores
the exact mask with its whole outline moved by one pixel, outwards and inwards (a dilation or
erosion by the 4-connected cross): what an edge error of a single pixel costs at each scenario's
particle sizes.

Usage::

    python benchmarks/outline_errors.py --out benchmarks/results/outline_errors.json
    python benchmarks/outline_errors.py --model work/ft/model --out other.json --n 20

Prints one row per scenario and writes JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from nanomorph.cli import PRECISION_CHOICES

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
OUTPUT_STRIDE = 4  # DeepLabV3+ (smp) predicts at a quarter of its input's resolution


def head_ceiling_mask(mask: np.ndarray, stride: int, iterations: int = 300) -> np.ndarray:
    """Best mask that logits on a grid ``stride`` times coarser give after bilinear upsampling."""
    import torch
    import torch.nn.functional as F

    height, width = mask.shape
    target = torch.from_numpy(mask.astype(np.float32))[None, None]
    target = F.pad(target, (0, (-width) % stride, 0, (-height) % stride), mode="replicate")
    coarse = F.avg_pool2d(target, stride)
    logits = torch.logit(coarse.clamp(1e-2, 1 - 1e-2)).requires_grad_(True)
    optimiser = torch.optim.Adam([logits], lr=0.3)

    def upsampled():
        return F.interpolate(logits, scale_factor=stride, mode="bilinear", align_corners=False)

    for _ in range(iterations):
        # the factor sharpens the sigmoid so that the fit aims at the mask, not at soft edges
        loss = F.binary_cross_entropy_with_logits(4 * upsampled(), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return (upsampled()[0, 0, :height, :width] >= 0).detach().numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model name or folder (default: the shipped model)")
    parser.add_argument("--n", type=int, default=20, help="images per scenario (default 20)")
    parser.add_argument("--seed", type=int, default=20240601, help="test-set seed")
    parser.add_argument("--precision", default="auto", choices=PRECISION_CHOICES)
    parser.add_argument("--head-ceiling", action="store_true", help="also fit coarse logits")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)

    import torch
    from scipy.ndimage import binary_dilation, binary_erosion

    from nanomorph.outputs import write_json
    from nanomorph.segment.evaluate import simulated_test_set
    from nanomorph.segment.metrics import (
        PIXEL_ERROR_KINDS,
        pixel_error_breakdown,
        summarize_pixel_errors,
    )
    from nanomorph.segment.model import load_segmenter
    from nanomorph.segment.preprocess import downsample_factor

    torch.set_num_threads(2)
    segmenter = load_segmenter(args.model, device="cpu", precision=args.precision)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(PIXEL_ERROR_KINDS, 0))
    by_threshold: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((len(THRESHOLDS), 2)))
    ceiling: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(2))
    one_pixel: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((2, 2)))
    n_images: dict[str, int] = defaultdict(int)
    start = time.perf_counter()
    for item in simulated_test_set(seed=args.seed, n_per_scenario=args.n):
        truth = np.asarray(item.mask, bool)
        probability = segmenter.predict_proba(item.image, item.pixel_size_nm)
        visible = np.where(truth, np.asarray(item.instances), 0)
        found = pixel_error_breakdown(visible, probability >= segmenter.threshold)
        for kind, value in found.items():
            counts[item.scenario][kind] += value
        for k, threshold in enumerate(THRESHOLDS):
            mask = probability >= threshold
            by_threshold[item.scenario][k] += [(mask & truth).sum(), (mask | truth).sum()]
        if args.head_ceiling:
            stride = OUTPUT_STRIDE * downsample_factor(item.pixel_size_nm, segmenter.preprocess)
            mask = head_ceiling_mask(truth, stride)
            ceiling[item.scenario] += [(mask & truth).sum(), (mask | truth).sum()]
        for k, moved in enumerate((binary_dilation(truth), binary_erosion(truth))):
            one_pixel[item.scenario][k] += [(moved & truth).sum(), (moved | truth).sum()]
        n_images[item.scenario] += 1

    rows = []
    for scenario, scenario_counts in counts.items():
        row = {"scenario": scenario, "n_images": n_images[scenario], "counts": scenario_counts}
        row.update(summarize_pixel_errors(scenario_counts))
        pooled = by_threshold[scenario]
        row["particle_iou_by_threshold"] = {
            f"{t:.2f}": float(pooled[k, 0] / pooled[k, 1]) for k, t in enumerate(THRESHOLDS)
        }
        moved = one_pixel[scenario]
        row["iou_outline_one_pixel_out"] = float(moved[0, 0] / moved[0, 1])
        row["iou_outline_one_pixel_in"] = float(moved[1, 0] / moved[1, 1])
        if args.head_ceiling:
            row["head_resolution_iou_ceiling"] = float(ceiling[scenario][0] / ceiling[scenario][1])
        rows.append(row)

    header = (
        f"{'scenario':26s} {'IoU':>6s} {'missed':>7s} {'edge-':>6s} {'false':>6s} "
        f"{'edge+':>6s} {'perfect outlines':>16s} {'1 px out':>8s} {'1 px in':>7s}"
    )
    print(header + ("  head ceiling" if args.head_ceiling else ""))
    for row in rows:
        line = (
            f"{row['scenario']:26s} {row['particle_iou']:6.3f} {row['missed_particles']:7.3f} "
            f"{row['edge_missed']:6.3f} {row['false_regions']:6.3f} {row['edge_added']:6.3f} "
            f"{row['iou_with_perfect_outlines']:16.3f} {row['iou_outline_one_pixel_out']:8.3f} "
            f"{row['iou_outline_one_pixel_in']:7.3f}"
        )
        if args.head_ceiling:
            line += f"  {row['head_resolution_iou_ceiling']:12.3f}"
        print(line)
    print("particle IoU by threshold:", ", ".join(f"{t:.2f}" for t in THRESHOLDS))
    for row in rows:
        values = " ".join(f"{v:.3f}" for v in row["particle_iou_by_threshold"].values())
        print(f"  {row['scenario']:26s} {values}")
    write_json(
        args.out,
        {
            "benchmark": "pixel errors of the network's mask: whole particles vs outlines",
            "model": segmenter.name,
            "precision": segmenter.precision,
            "threshold": segmenter.threshold,
            "test_set_seed": args.seed,
            "n_per_scenario": args.n,
            "seconds": time.perf_counter() - start,
            "scenarios": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
