"""What the workflow's mask cache saves: a segmentation job run again on images it has segmented.

A segmentation job runs again whenever anything after it must (a separation setting changed, a
table deleted, a job killed partway): its masks are handed on in a temporary folder. With the
cache (nanomorph.batch.MaskCache) the masks of unchanged images come from
``results/.nanomorph/masks`` instead of the network. This simulates micrographs, runs
:func:`nanomorph.batch.segment_batch` with the shipped model on them twice with a cache (first:
every image segmented; second: every mask from the cache) and once more without, and prints the
seconds per image of each and the cache's size on disk. Writes JSON (``--out``, default
benchmarks/results/mask_cache.json). Run: ``python benchmarks/bench_mask_cache.py`` (about 3
minutes on 2 cores in float32).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from bench_data import write_simulated_tiffs
from bench_record import save_record

from nanomorph.batch import BatchImage, segment_batch
from nanomorph.io import read_frame
from nanomorph.pipeline import make_segmenter


def read_image(path: Path) -> np.ndarray:
    """The pixels as a segmentation job reads them (from the source file, frame by frame)."""
    return read_frame(path, 0).image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--pixel-size", type=float, default=0.2, help="nm per pixel")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "mask_cache.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    segmenter = make_segmenter("model", device="cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_simulated_tiffs(
            folder, args.images, args.size, args.pixel_size, scenario="isolated"
        )
        images = [
            BatchImage(path.stem, partial(read_image, path), args.pixel_size) for path in paths
        ]
        cache = folder / "cache"
        for run, cache_dir in (
            ("first run (segmented, masks cached)", cache),
            ("again, masks from the cache", cache),
            ("again without a cache (before)", None),
        ):
            start = time.perf_counter()
            report = segment_batch(segmenter, images, folder / "out", cache_dir=cache_dir)
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "run": run,
                    "seconds_per_image": round(seconds / len(images), 3),
                    "segmented": report.segmented,
                    "from_cache": report.from_cache,
                }
            )
            print(rows[-1], flush=True)
        cache_kb = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / 1e3
    print(f"| run ({args.images} images of {args.size}², isolated scenes) | s per image |")
    print("|---|---|")
    for row in rows:
        print(f"| {row['run']} | {row['seconds_per_image']:.2f} |")
    print(f"cache on disk: {cache_kb / args.images:.0f} kB per image")
    save_record(
        args.out,
        images=args.images,
        size=args.size,
        pixel_size_nm=args.pixel_size,
        precision=segmenter.describe().get("precision"),
        cache_kb_per_image=round(cache_kb / args.images),
        rows=rows,
    )


if __name__ == "__main__":
    main()
