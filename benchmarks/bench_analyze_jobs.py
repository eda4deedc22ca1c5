"""``nanomorph analyze --jobs N``: the analysis after segmentation in N processes, end to end.

The network segments one image after another in the main process; despeckling, separation,
measurement, the overlay and the writing of each segmented image run in N worker processes
meanwhile (``--jobs 1``: everything one image after another). This simulates crowded
micrographs (the "overlapping" scenario), writes them as calibrated TIFFs and times the whole
command, as a user runs it (process start, model load and workers' start included), for each
segmenter and number of jobs; every run segments (``--no-mask-cache``), and every run's particle
tables are checked to be identical to those of ``--jobs 1``.

Prints a table and writes JSON (``--out``, default benchmarks/results/analyze_jobs.json).
Run: ``python benchmarks/bench_analyze_jobs.py`` (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_data import write_simulated_tiffs
from bench_record import save_record


def run_analyze(images: list[Path], out: Path, segmenter: str, jobs: int) -> float:
    command = [
        sys.executable,
        "-m",
        "nanomorph",
        "analyze",
        *map(str, images),
        "--out",
        str(out),
        "--segmenter",
        segmenter,
        "--jobs",
        str(jobs),
        "--no-mask-cache",
        "-q",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def tables(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(out.glob("*/particles.csv"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--pixel-size", type=float, default=0.2, help="nm per pixel")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--segmenters", nargs="+", default=["threshold", "model"])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "analyze_jobs.json"
    )
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        images = write_simulated_tiffs(
            folder, args.images, args.size, args.pixel_size, scenario="overlapping"
        )
        for segmenter in args.segmenters:
            reference = None
            for jobs in args.jobs:
                out = folder / f"{segmenter}_{jobs}"
                seconds = run_analyze(images, out, segmenter, jobs)
                found = tables(out)
                reference = reference or found
                if found != reference:
                    raise SystemExit(f"{segmenter}, --jobs {jobs}: tables differ from --jobs 1")
                rows.append(
                    {
                        "segmenter": segmenter,
                        "jobs": jobs,
                        "seconds": round(seconds, 2),
                        "seconds_per_image": round(seconds / len(images), 3),
                    }
                )
                print(rows[-1], flush=True)
    print(f"| segmenter ({args.images} images of {args.size}²) | --jobs | seconds | per image |")
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['segmenter']} | {row['jobs']} | {row['seconds']:.1f} "
            f"| {row['seconds_per_image']:.2f} |"
        )
    save_record(
        args.out,
        cores=os.cpu_count(),
        images=args.images,
        size=args.size,
        pixel_size_nm=args.pixel_size,
        scenario="overlapping",
        rows=rows,
    )


if __name__ == "__main__":
    main()
