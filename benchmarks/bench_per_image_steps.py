"""Time the workflow's per-image steps, per megapixel of image (ingest: per megabyte of file).

ingest (read one micrograph, check its calibration, record it as JSON with its pixels' checksum)
runs before segmentation; its time limit follows the megabytes of file per frame (a stack's
share), as the pixels are not known before the file is read: timed here on a float32 .dm4 of the
image's size. No copy of the pixels is kept: segmentation, overlay and (with a declared polarity)
postprocess read them again from the file and check the checksum ("read again", timed apart).
postprocess (despeckle, overlap test, UECS separation), measure (the particle table) and overlay
(the outlined PNG) run once per image; the workflow sizes their time limits (``runtime``, what
SLURM kills a job at) from the image's megapixels (workflow/rules/common.smk,
PER_IMAGE_SECONDS_PER_MEGAPIXEL). This measures what those steps take on crowded masks: disks of
radius 8-30 px, 30 % of them in overlapping pairs (benchmarks/bench_separate.py's field), at the
density given per megapixel, the UECS default settings, 0.1 nm/px.

Prints a table and writes JSON (``--out``, default benchmarks/results/per_image_steps.json).
Run: ``python benchmarks/bench_per_image_steps.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_record import save_record
from bench_separate import field_mask

from nanomorph.io import read_frame, write_dm
from nanomorph.measure import measure_particles
from nanomorph.outputs import write_json
from nanomorph.pipeline import (
    AnalysisParameters,
    ingested_image_record,
    postprocess,
    read_recorded_image,
)
from nanomorph.plots import save_overlay

PIXEL_SIZE_NM = 0.1


def time_steps(size: int, particles_per_megapixel: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    megapixels = size * size / 1e6
    mask = field_mask(rng, size, int(round(particles_per_megapixel * megapixels)))[0]
    image = (rng.normal(0.0, 0.1, mask.shape) + 1.0 - 0.5 * mask).astype(np.float32)
    params = AnalysisParameters()

    start = time.perf_counter()
    _, separation = postprocess(mask, PIXEL_SIZE_NM, params)
    postprocess_s = time.perf_counter() - start

    start = time.perf_counter()
    table = measure_particles(separation.particles, PIXEL_SIZE_NM, image="field", frame=0)
    measure_s = time.perf_counter() - start

    separated = set(table.loc[table["separated"].astype(bool), "particle_id"].astype(int))
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        save_overlay(
            Path(folder) / "overlay.png",
            image,
            separation.labels,
            particles=table,
            separated_ids=separated,
        )
        overlay_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as folder:
        source = write_dm(Path(folder) / "field.dm4", image, PIXEL_SIZE_NM, version=4)
        file_megabytes = source.stat().st_size / 1e6
        start = time.perf_counter()
        record = ingested_image_record(read_frame(source, 0))
        write_json(Path(folder) / "micrograph.json", record)
        ingest_s = time.perf_counter() - start
        start = time.perf_counter()
        read_recorded_image(record)
        read_again_s = time.perf_counter() - start

    seconds = {"postprocess": postprocess_s, "measure": measure_s, "overlay": overlay_s}
    return {
        "ingest_file_megabytes": file_megabytes,
        "ingest_seconds": ingest_s,
        "ingest_seconds_per_megabyte": ingest_s / file_megabytes,
        "read_again_seconds": read_again_s,
        "size_px": size,
        "megapixels": megapixels,
        "particles_drawn_per_megapixel": particles_per_megapixel,
        "particles_measured": len(table),
        "seconds": seconds,
        "seconds_per_megapixel": {step: s / megapixels for step, s in seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument(
        "--particles-per-megapixel",
        type=int,
        default=280,
        help="disks drawn per megapixel (280: 4,700 on a 4096^2 field, about as crowded as the "
        "grid of disks allows without turning every pair into a cluster)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "per_image_steps.json"
    )
    args = parser.parse_args()

    rows = [time_steps(size, args.particles_per_megapixel, args.seed) for size in args.sizes]
    print(
        "| image | ingest (s per MB) | read again | particles | postprocess | measure | overlay "
        "| s per megapixel (p / m / o) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        s, rate = row["seconds"], row["seconds_per_megapixel"]
        print(
            f"| {row['size_px']}² | {row['ingest_seconds']:.2f} s "
            f"({row['ingest_seconds_per_megabyte']:.4f}) | {row['read_again_seconds']:.2f} s "
            f"| {row['particles_measured']} | {s['postprocess']:.1f} s "
            f"| {s['measure']:.1f} s | {s['overlay']:.1f} s | {rate['postprocess']:.2f} / "
            f"{rate['measure']:.2f} / {rate['overlay']:.2f} |"
        )
    save_record(
        args.out,
        note="one run each; shared 2-core machine, expect +-25 % between runs",
        pixel_size_nm=PIXEL_SIZE_NM,
        rows=rows,
    )


if __name__ == "__main__":
    main()
