"""Speed and split-rate benchmark for nanomorph.separate.

1. Speed: a 2048 x 2048 mask with about 300 disks (radius 8-30 px), about 30 % of them in
   overlapping pairs (overlap 10-35 % of the summed radii), separated with each method.
2. Split rate: random overlapping pairs (radius 10-40 px, radius ratio 1-2, overlap 10-35 %)
   under the "paper" and "sensitive" overlap tests with UECS and watershed: how many come out as
   two particles, and how many of those have both equivalent diameters within 5 % of the truth.
   Random single ellipses and rotated rectangles measure the false-split rate.

Prints a table and writes JSON (``--out``, default benchmarks/results/separate.json).
Run: ``python benchmarks/bench_separate.py``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from bench_record import save_record
from skimage.draw import disk, ellipse, polygon

from nanomorph.separate import separate

PIXEL_SIZE_NM = 0.1


def _draw_pair(mask, centre, r1, r2, overlap, angle):
    distance = (r1 + r2) * (1 - overlap)
    step = np.array([math.sin(angle), math.cos(angle)]) * distance / 2
    truths = []
    for c, r in ((centre - step, r1), (centre + step, r2)):
        rr, cc = disk(tuple(c), r, shape=mask.shape)
        mask[rr, cc] = True
        truths.append(math.sqrt(4 * len(rr) / math.pi))
    return truths


def field_mask(rng: np.random.Generator, size: int = 2048, n_particles: int = 300):
    """Disks on a jittered grid so that only the intended pairs touch."""
    mask = np.zeros((size, size), bool)
    cells = int(math.ceil(math.sqrt(n_particles * 0.85)))
    cell = size // cells
    n_pairs = int(round(n_particles * 0.3 / 2))
    slots = rng.permutation(cells * cells)
    placed = 0
    for index, slot in enumerate(slots):
        if placed >= n_particles:
            break
        centre = np.array([(slot // cells + 0.5) * cell, (slot % cells + 0.5) * cell])
        centre = centre + rng.uniform(-0.1, 0.1, 2) * cell
        if index < n_pairs:
            r1 = rng.uniform(12, 30)
            r2 = r1 / rng.uniform(1, 1.5)
            _draw_pair(mask, centre, r1, r2, rng.uniform(0.10, 0.35), rng.uniform(0, math.pi))
            placed += 2
        else:
            mask[disk(tuple(centre), rng.uniform(8, 30), shape=mask.shape)] = True
            placed += 1
    return mask, placed, n_pairs


def time_field(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    mask, n_particles, n_pairs = field_mask(rng)
    rows = []
    for method, test in [
        ("uecs", "sensitive"),
        ("uecs", "paper"),
        ("watershed", "sensitive"),
        ("none", "sensitive"),
    ]:
        start = time.perf_counter()
        result = separate(mask, PIXEL_SIZE_NM, method=method, overlap_test=test)
        elapsed = time.perf_counter() - start
        rows.append(
            {
                "method": method,
                "overlap_test": test,
                "seconds": round(elapsed, 3),
                "particles_drawn": n_particles,
                "pairs_drawn": n_pairs,
                "particles_found": len(result.particles),
                "separated": sum(p.separated for p in result.particles),
                "excluded": result.n_excluded,
            }
        )
    return rows


def split_rates(seed: int, n_pairs: int, n_singles: int) -> list[dict]:
    rng = np.random.default_rng(seed + 1)
    pairs = []
    for _ in range(n_pairs):
        r1 = rng.uniform(10, 40)
        r2 = max(8.0, r1 / rng.uniform(1, 2))
        size = int(2 * (r1 + r2) + 20)
        mask = np.zeros((size, size), bool)
        overlap = rng.uniform(0.10, 0.35)
        truth = _draw_pair(mask, np.array([size / 2] * 2), r1, r2, overlap, rng.uniform(0, math.pi))
        pairs.append((mask, sorted(truth)))
    singles = []
    for k in range(n_singles):
        mask = np.zeros((110, 110), bool)
        if k % 2 == 0:
            a = rng.uniform(8, 40)
            b = a / rng.uniform(1, 3)
            mask[ellipse(55.3, 55.1, a, b, shape=mask.shape, rotation=rng.uniform(0, math.pi))] = 1
        else:
            h, w = rng.uniform(8, 40), rng.uniform(8, 60)
            angle = rng.uniform(0, math.pi)
            corners = np.array([[-h, -w], [-h, w], [h, w], [h, -w]]) / 2
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            pts = corners @ rot.T + 55
            mask[polygon(pts[:, 0], pts[:, 1], mask.shape)] = True
        singles.append(mask)

    rows = []
    for method in ("uecs", "watershed"):
        for test in ("paper", "sensitive"):
            split = accurate = 0
            start = time.perf_counter()
            for mask, truth in pairs:
                particles = separate(mask, PIXEL_SIZE_NM, method=method, overlap_test=test)
                found = particles.particles
                if len(found) == 2:
                    split += 1
                    got = sorted(math.sqrt(4 * p.mask.sum() / math.pi) for p in found)
                    if all(abs(g / t - 1) <= 0.05 for g, t in zip(got, truth, strict=True)):
                        accurate += 1
            elapsed = time.perf_counter() - start
            false_splits = sum(
                len(separate(m, PIXEL_SIZE_NM, method=method, overlap_test=test).particles) != 1
                for m in singles
            )
            rows.append(
                {
                    "method": method,
                    "overlap_test": test,
                    "pairs": len(pairs),
                    "split_rate": round(split / len(pairs), 3),
                    "split_within_5pct_rate": round(accurate / len(pairs), 3),
                    "ms_per_pair": round(1000 * elapsed / len(pairs), 1),
                    "singles": len(singles),
                    "singles_not_one_particle": false_splits,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "separate.json"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--singles", type=int, default=100)
    args = parser.parse_args()

    speed = time_field(args.seed)
    print("Separation of a 2048x2048 mask (~300 particles, ~30 % in overlapping pairs)")
    print(f"{'method':<10} {'test':<10} {'s':>7} {'found':>6} {'split':>6} {'excluded':>8}")
    for r in speed:
        print(
            f"{r['method']:<10} {r['overlap_test']:<10} {r['seconds']:>7.2f} "
            f"{r['particles_found']:>6} {r['separated']:>6} {r['excluded']:>8}"
        )
    print(f"(drawn: {speed[0]['particles_drawn']} particles, {speed[0]['pairs_drawn']} pairs)\n")

    rates = split_rates(args.seed, args.pairs, args.singles)
    print("Random overlapping pairs (r 10-40 px, ratio 1-2, overlap 10-35 %) and convex singles")
    print(f"{'method':<10} {'test':<10} {'split':>6} {'<=5%':>6} {'ms/pair':>8} {'singles!=1':>10}")
    for r in rates:
        print(
            f"{r['method']:<10} {r['overlap_test']:<10} {r['split_rate']:>6.2f} "
            f"{r['split_within_5pct_rate']:>6.2f} {r['ms_per_pair']:>8.1f} "
            f"{r['singles_not_one_particle']:>10}"
        )

    print()
    save_record(args.out, benchmark="separate", seed=args.seed, field_2048=speed, pair_split=rates)


if __name__ == "__main__":
    main()
