"""Time reading the last frame of a long series, the way each of the workflow's ingest jobs does.

The workflow runs one ingest job per frame. Reading frame k by iterating over the file converts
the k frames before it (and loads the whole stack), so a series of N frames costs N^2 / 2 frame
conversions in all; ``nanomorph.io.read_frame`` reads and converts frame k alone where the
format allows (TIFF pages, EMD, SER, HyperSpy and DigitalMicrograph stacks).

Writes an N-frame series of 1024^2 uint16 frames as an ImageJ TIFF and a Velox EMD (the formats
the project can write stacks in) to a temporary folder and times,
for the last frame, ``read_frame`` against iterating up to it, with the peak of traced Python
memory (numpy arrays included). Prints a table and writes JSON (``--out``, default
benchmarks/results/read_frames.json). Also times counting the frames of one 4096^2 file, which
the workflow does for every file whenever it starts.
Run: ``python benchmarks/bench_read_frames.py``.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from bench_record import save_record

from nanomorph.io import (
    count_frames,
    iter_micrographs,
    read_frame,
    write_calibrated_tiff,
    write_dm,
    write_velox_emd,
)

PIXEL_SIZE_NM = 0.2


def write_series(folder: Path, n_frames: int, size: int) -> dict[str, Path]:

    rng = np.random.default_rng(0)
    stack = rng.integers(0, 4000, size=(n_frames, size, size), dtype=np.uint16)
    tif = write_calibrated_tiff(folder / "series.tif", stack, PIXEL_SIZE_NM)
    emd = write_velox_emd(folder / "series.emd", stack, PIXEL_SIZE_NM)
    return {"TIFF (ImageJ)": tif, "Velox EMD": emd}


def timed(function) -> tuple[float, float]:
    tracemalloc.start()
    start = time.perf_counter()
    function()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "read_frames.json"
    )
    args = parser.parse_args()
    last = args.frames - 1
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for fmt, path in write_series(Path(folder), args.frames, args.size).items():
            read_frame(path, 0)  # format libraries imported before anything is timed
            alone_s, alone_mb = timed(lambda p=path: read_frame(p, last))
            iterate_s, iterate_mb = timed(
                lambda p=path: next(itertools.islice(iter_micrographs(p), last, None))
            )
            np.testing.assert_array_equal(
                read_frame(path, last).image,
                next(itertools.islice(iter_micrographs(path), last, None)).image,
            )
            rows.append(
                {
                    "format": fmt,
                    "file_mb": path.stat().st_size / 2**20,
                    "read_frame_s": alone_s,
                    "read_frame_peak_mb": alone_mb,
                    "iterate_to_frame_s": iterate_s,
                    "iterate_to_frame_peak_mb": iterate_mb,
                }
            )
        # What the workflow does for every file whenever it starts (and in every cluster job).
        counts = []
        image = np.random.default_rng(1).random((4096, 4096)).astype(np.float32)
        for fmt, path in {
            "DigitalMicrograph .dm4": write_dm(Path(folder) / "big.dm4", image, PIXEL_SIZE_NM, 4),
            "TIFF": write_calibrated_tiff(Path(folder) / "big.tif", image, PIXEL_SIZE_NM),
        }.items():
            count_frames(path)
            start = time.perf_counter()
            for _ in range(10):
                count_frames(path)
            counts.append({"format": fmt, "count_frames_ms": (time.perf_counter() - start) * 100})
    print(f"last of {args.frames} frames of {args.size}² uint16:")
    print("| format | file | read_frame | peak memory | iterating to it | peak memory |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['format']} | {row['file_mb']:.0f} MB | {row['read_frame_s']:.3f} s "
            f"| {row['read_frame_peak_mb']:.0f} MB | {row['iterate_to_frame_s']:.2f} s "
            f"| {row['iterate_to_frame_peak_mb']:.0f} MB |"
        )
    print("count_frames of one 4096² float32 file (64 MB, in the page cache), mean of 10:")
    for row in counts:
        print(f"  {row['format']}: {row['count_frames_ms']:.1f} ms")
    save_record(
        args.out,
        frames=args.frames,
        size_px=args.size,
        rows=rows,
        count_frames_4096_float32=counts,
    )


if __name__ == "__main__":
    main()
