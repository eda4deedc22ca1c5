"""Time and memory of writing a sample's particle workbook (``particles.xlsx``).

The workflow writes every sample's particles as an Excel workbook: one sheet with every particle
and, up to nanomorph.aggregate.MAX_IMAGE_SHEETS images, one sheet per image. This writes
tables of the shape nanomorph.measure gives (20 columns) for samples of growing size, each in a
fresh process so that its peak memory is its own, and prints the wall time, cells per second
and peak resident memory. Prints a table and writes JSON (``--out``, default
benchmarks/results/xlsx.json). Run: ``python benchmarks/bench_xlsx.py`` (about 2 minutes on 2
cores).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from bench_record import save_record

from nanomorph.aggregate import write_xlsx


def particle_table(n_particles: int, n_images: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    images = np.repeat([f"img_{i:05d}" for i in range(n_images)], -(-n_particles // n_images))
    table = pd.DataFrame(
        {
            "image": images[:n_particles],
            "particle_id": np.arange(1, n_particles + 1),
            "separated": rng.random(n_particles) < 0.2,
        }
    )
    for name in ("area_nm2", "equivalent_diameter_nm", "feret_min_nm", "feret_max_nm"):
        table[name] = rng.lognormal(1.5, 0.3, n_particles)
    for name in ("aspect_ratio", "perimeter_nm", "circularity", "convexity", "solidity"):
        table[name] = rng.random(n_particles)
    for name in ("centroid_x_nm", "centroid_y_nm", "bbox_min_row", "bbox_min_col"):
        table[name] = rng.random(n_particles) * 400
    for name in ("bbox_max_row", "bbox_max_col", "pixel_size_nm", "frame"):
        table[name] = rng.random(n_particles)
    return table


def write_case(n_particles: int, n_images: int) -> dict:
    table = particle_table(n_particles, n_images)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "particles.xlsx"
        start = time.perf_counter()
        write_xlsx(path, table)
        seconds = time.perf_counter() - start
        file_mb = path.stat().st_size / 1e6
    cells = table.size * (2 if n_images <= 500 else 1)
    return {
        "particles": n_particles,
        "images": n_images,
        "cells_written": cells,
        "seconds": round(seconds, 2),
        "cells_per_second": round(cells / seconds),
        "file_mb": round(file_mb, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        nargs="+",
        default=["20000x200", "100000x500", "400000x4000"],
        help="PARTICLESxIMAGES",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "xlsx.json")
    args = parser.parse_args()

    rows = []
    for case in args.cases:
        n_particles, n_images = (int(v) for v in case.split("x"))
        with ProcessPoolExecutor(max_workers=1) as pool:
            rows.append(pool.submit(write_case, n_particles, n_images).result())
        print(rows[-1], flush=True)
    print("| particles | images | cells | time | cells/s | file | peak memory |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['particles']:,} | {row['images']:,} | {row['cells_written']:,} "
            f"| {row['seconds']:.1f} s | {row['cells_per_second']:,} | {row['file_mb']} MB "
            f"| {row['peak_rss_mb']} MB |"
        )
    save_record(args.out, rows=rows)


if __name__ == "__main__":
    main()
