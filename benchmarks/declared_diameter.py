"""Choose how a declared particle diameter is used, on simulated validation scenes.

A declared diameter lets the network see the image a second time, block-averaged so that the
particles are about ``target_particle_px`` across, and :func:`nanomorph.segment.inference.
combine_scales` takes the outlines from the image's own grid wherever the two passes' masks of a
particle agree to an IoU of ``agreement``.  This script scores every pair of the two settings on
simulated scenes whose seeds are neither a training seed nor the model card's test seeds
(20240601, 20240602), each image declared with its true median equivalent diameter:

    python benchmarks/declared_diameter.py --out benchmarks/results/declared_diameter_selection.json

It prints the particle IoU per scenario (pixels pooled over the scenario's images) for the image's
own grid alone ("not declared"), the coarse pass alone and each combination, and writes them as
JSON. The same run chooses the other end, ``small_particle_px``: below it the network sees the
image enlarged twice instead (rows "small below N px"; the large-particle rule left off there).
Faceted scenes hold no particles that small, ultrasmall scenes none large enough for a coarser
pass.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

SCENARIOS = ("isolated", "overlapping", "ultrasmall_low_contrast", "haadf", "faceted")


def main(argv=None) -> int:
    from nanomorph.segment import load_segmenter
    from nanomorph.segment.evaluate import simulated_test_set
    from nanomorph.segment.inference import combine_scales, keep_confident_regions
    from nanomorph.segment.preprocess import downsample_factor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or folder (default: shipped)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[20240603, 20240604])
    parser.add_argument("--n", type=int, default=20, help="images per scenario and seed")
    parser.add_argument("--targets", type=float, nargs="+", default=[16.0, 24.0, 32.0])
    parser.add_argument("--agreements", type=float, nargs="+", default=[0.5, 0.7, 0.85])
    parser.add_argument("--small-particle-px", type=float, nargs="+", default=[4.0, 6.0, 8.0, 10.0])
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="fp32")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    segmenter = load_segmenter(args.model, precision=args.precision)
    level, peak = segmenter.threshold, segmenter.min_peak_probability
    counts: dict[str, dict[str, list[int]]] = {}
    changed: dict[str, dict[str, int]] = {}
    start = time.perf_counter()
    for seed in args.seeds:
        for item in simulated_test_set(SCENARIOS, seed, args.n):
            truth = np.asarray(item.mask, dtype=bool)
            px = item.pixel_size_nm
            diameters = item.particles["equivalent_diameter_nm"]
            declared = float(diameters.median()) if len(diameters) else None
            own = downsample_factor(px, segmenter.preprocess)
            fine = segmenter.predict_on_grid(item.image, px, "auto", None)
            masks = {"not declared": keep_confident_regions(fine, level, peak)}
            passes = {own: fine}
            for target in args.targets:
                factor = (
                    downsample_factor(px, segmenter.preprocess, declared, target)
                    if declared
                    else own
                )
                tally = changed.setdefault(f"target {target:g}", {})
                tally[item.scenario] = tally.get(item.scenario, 0) + int(factor != own)
                if factor not in passes:
                    segmenter.target_particle_px = target
                    passes[factor] = segmenter.predict_on_grid(item.image, px, "auto", declared)
                coarse = passes[factor]
                masks[f"target {target:g}, coarse pass only"] = keep_confident_regions(
                    coarse, level, peak
                )
                for agreement in args.agreements:
                    combined = (
                        fine
                        if factor == own
                        else combine_scales(fine, coarse, factor, level, peak, agreement)
                    )
                    masks[f"target {target:g}, agreement {agreement:g}"] = keep_confident_regions(
                        combined, level, peak
                    )
            # Below the largest small_particle_px tried, one enlarged pass serves every rule.
            width_px = declared / (px * own) if declared else float("inf")
            enlarged = None
            if width_px < max(args.small_particle_px):
                segmenter.small_particle_px = max(args.small_particle_px)
                enlarged = keep_confident_regions(
                    segmenter.predict_on_grid(item.image, px, "auto", declared), level, peak
                )
            for small in args.small_particle_px:
                name = f"small below {small:g} px"
                tally = changed.setdefault(name, {})
                tally[item.scenario] = tally.get(item.scenario, 0) + int(width_px < small)
                masks[name] = enlarged if width_px < small else masks["not declared"]
            for name, mask in masks.items():
                tally = counts.setdefault(name, {}).setdefault(item.scenario, [0, 0])
                tally[0] += int(np.count_nonzero(mask & truth))
                tally[1] += int(np.count_nonzero(mask | truth))
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    iou = {
        name: {s: (i / u if u else float("nan")) for s, (i, u) in by.items()}
        for name, by in counts.items()
    }
    width = max(len(name) for name in iou)
    print(f"{'particle IoU':{width}s} " + " ".join(f"{s:>12s}" for s in SCENARIOS) + "      sum")
    for name, by in iou.items():
        print(
            f"{name:{width}s} "
            + " ".join(f"{by[s]:12.3f}" for s in SCENARIOS)
            + f" {sum(by[s] for s in SCENARIOS):8.3f}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "model": args.model or "shipped",
            "precision": segmenter.precision,
            "seeds": args.seeds,
            "n_per_scenario": args.n,
            "declared_diameter": "each image's true median equivalent diameter",
            "images_seen_coarser_or_enlarged": changed,
            "particle_iou": iou,
            "pixel_counts_intersection_union": counts,
            "seconds": time.perf_counter() - start,
        }
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
