"""Time and memory of a sample's aggregation steps as the number of images grows.

After the per-image jobs, each sample goes through one job per step: merge_sample (read every
image's particle table and metadata, write particles.parquet), summarize_sample (statistics with
bootstrap intervals), histograms, sample_csv and, for an in-situ series, series (per-frame
statistics and plots) and tracks (trackpy linking). These jobs see the whole sample at once, so
they are what grows with a sample of tens of thousands of images. This writes per-image tables
of the shape nanomorph.measure gives (bench_xlsx.particle_table), then runs each step as its
workflow script does, in a fresh process so that its peak memory is its own. Prints a table and
writes JSON (``--out``, default benchmarks/results/aggregate_scale.json). Run: ``python
benchmarks/bench_aggregate_scale.py`` (about 15 minutes on 2 cores; ``--images 200 1000`` for a
quick look).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from bench_record import save_record
from bench_xlsx import particle_table

from nanomorph.aggregate import (
    merge_tables,
    series_statistics,
    summarize,
    track_particles,
    track_summary,
)
from nanomorph.outputs import read_table, write_json, write_table
from nanomorph.plots import save_histograms, save_series_plots, save_tracks_plot

STEPS = ("merge_sample", "summarize_sample", "histograms", "sample_csv", "series", "tracks")


def write_images(folder: Path, n_images: int, particles_per_image: int) -> None:
    """One particles.parquet and metadata.json per image, as the measure rule leaves them; the
    particles drift a little from frame to frame, so that a series can be tracked."""
    rng = np.random.default_rng(0)
    base = particle_table(particles_per_image, 1)
    base["centroid_x_nm"] = rng.random(particles_per_image) * 400
    base["centroid_y_nm"] = rng.random(particles_per_image) * 400
    for index in range(n_images):
        name = f"img_{index:05d}"
        table = base.copy()
        table["image"] = name
        table["frame"] = index
        table["centroid_x_nm"] += rng.normal(0, 0.3, particles_per_image)
        table["centroid_y_nm"] += rng.normal(0, 0.3, particles_per_image)
        table["equivalent_diameter_nm"] *= rng.lognormal(0, 0.05, particles_per_image)
        image_dir = folder / "images" / name
        write_table(table, parquet_path=image_dir / "particles.parquet")
        write_json(image_dir / "metadata.json", {"image": name, "n_excluded": 1})


def _image_files(folder: Path, file: str) -> list[Path]:
    return sorted((folder / "images").glob(f"*/{file}"))


def merge_sample(folder: Path) -> None:
    metadata = [json.loads(p.read_text()) for p in _image_files(folder, "metadata.json")]
    merged = merge_tables(_image_files(folder, "particles.parquet"), sample="bench")
    order = {meta["image"]: index for index, meta in enumerate(metadata)}
    merged["frame"] = merged["image"].map(order).astype("Int64")
    write_table(merged, parquet_path=folder / "particles.parquet")


def summarize_sample(folder: Path) -> None:
    particles = read_table(folder / "particles.parquet")
    metadata = [json.loads(p.read_text()) for p in _image_files(folder, "metadata.json")]
    excluded = {meta["image"]: int(meta["n_excluded"]) for meta in metadata}
    summary = summarize(particles, n_boot=2000, seed=0, group_by=None, excluded=excluded)
    write_table(summary, csv_path=folder / "summary.csv")


def histograms(folder: Path) -> None:
    save_histograms(read_table(folder / "particles.parquet"), folder / "figures", title="bench")


def sample_csv(folder: Path) -> None:
    write_table(read_table(folder / "particles.parquet"), csv_path=folder / "particles.csv")


def series(folder: Path) -> None:
    particles = read_table(folder / "particles.parquet")
    n_frames = len(_image_files(folder, "metadata.json"))
    stats = series_statistics(particles, frames=list(range(n_frames)))
    write_table(stats, csv_path=folder / "series.csv")
    save_series_plots(stats, folder / "figures")


def tracks(folder: Path) -> None:
    linked = track_particles(
        read_table(folder / "particles.parquet"), search_range_nm=5.0, memory=0
    )
    write_table(track_summary(linked), csv_path=folder / "track_summary.csv")
    write_table(linked, csv_path=folder / "tracks.csv")
    save_tracks_plot(linked, folder / "figures" / "tracks.png")


def run_step(step: Callable[[Path], None], folder: Path) -> dict:
    start = time.perf_counter()
    step(folder)
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[1000, 5000, 30000])
    parser.add_argument("--particles-per-image", type=int, default=50)
    parser.add_argument(
        "--steps", nargs="+", choices=STEPS, default=list(STEPS), help="steps to time"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "aggregate_scale.json"
    )
    args = parser.parse_args()

    rows = []
    for n_images in args.images:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            start = time.perf_counter()
            write_images(folder, n_images, args.particles_per_image)
            print(f"{n_images} images written in {time.perf_counter() - start:.0f} s", flush=True)
            row = {"images": n_images, "particles": n_images * args.particles_per_image}
            # merge_sample first: the others read its particles.parquet.
            for name in ("merge_sample", *(s for s in args.steps if s != "merge_sample")):
                with ProcessPoolExecutor(max_workers=1) as pool:
                    row[name] = pool.submit(run_step, globals()[name], folder).result()
                print(n_images, name, row[name], flush=True)
        rows.append(row)
    steps = [s for s in STEPS if s in rows[0]]
    print("| images | particles | " + " | ".join(steps) + " |")
    print("|---|---|" + "---|" * len(steps))
    for row in rows:
        cells = [f"{row[s]['seconds']:.1f} s, {row[s]['peak_rss_mb']:,} MB" for s in steps]
        print(f"| {row['images']:,} | {row['particles']:,} | " + " | ".join(cells) + " |")
    save_record(args.out, particles_per_image=args.particles_per_image, rows=rows)


if __name__ == "__main__":
    main()
