"""Time what the workflow costs before any job runs, for samples of many micrographs.

Snakemake parses the workflow once at the start and again in every cluster job (each job is a
``snakemake`` of its own on the node), and every parse names every image of every sample, which
means knowing each file's number of frames. This times, for folders of N small calibrated TIFFs:

- counting the frames of every file (nanomorph.io.image_sources), anew and from the cache that
  the workflow keeps in ``<results>/.nanomorph/frame_counts.json``;
- parsing the workflow (``snakemake --list-rules``: what every cluster job pays before its work),
  the first time (the cache is written) and again (the cache is read);
- a dry run (``snakemake -n``: building the whole job graph, once per run), with the default
  ``segment_batch_size`` and with the whole sample in one segmentation job (0).

The files are 64² pixels: what is timed is per file, not per pixel. Prints a table and writes
JSON (``--out``, default benchmarks/results/workflow_scale.json).
Run: ``python benchmarks/bench_workflow_scale.py`` (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_record import save_record

from nanomorph.io import FrameCountCache, find_micrographs, image_sources, write_calibrated_tiff

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def make_sample(folder: Path, n_files: int) -> Path:
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    folder.mkdir(parents=True)
    for index in range(n_files):
        write_calibrated_tiff(folder / f"img_{index:05d}.tif", image, pixel_size_nm=0.2)
    sheet = folder.parent / "samples.tsv"
    sheet.write_text(f"sample\tpath\tpixel_size_nm\tseries\tpolarity\nscale\t{folder}\t\tfalse\t\n")
    return sheet


def timed_snakemake(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([*SNAKEMAKE, *args], cwd=REPO, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def measure(n_files: int, root: Path) -> dict:
    sheet = make_sample(root / "images", n_files)
    results = root / "results"
    config = ["--config", f"samples={sheet}", f"results={results}", "segmenter=threshold"]

    start = time.perf_counter()
    image_sources(find_micrographs(root / "images"))
    count_s = time.perf_counter() - start
    cache = FrameCountCache(root / "frame_counts.json")
    image_sources(find_micrographs(root / "images"), cache=cache)
    cache.save()
    start = time.perf_counter()
    image_sources(find_micrographs(root / "images"), cache=FrameCountCache(cache.path))
    cached_count_s = time.perf_counter() - start

    first_parse_s = timed_snakemake("--list-rules", *config)
    cached_parse_s = timed_snakemake("--list-rules", *config)
    dry_run_s = timed_snakemake("-n", "--quiet", *config)
    dry_run_one_job_s = timed_snakemake("-n", "--quiet", *config, "segment_batch_size=0")
    return {
        "files": n_files,
        "count_frames_s": round(count_s, 3),
        "count_frames_cached_s": round(cached_count_s, 3),
        "parse_first_s": round(first_parse_s, 2),
        "parse_cached_s": round(cached_parse_s, 2),
        "dry_run_s": round(dry_run_s, 1),
        "dry_run_one_segment_job_s": round(dry_run_one_job_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[500, 4000])
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "workflow_scale.json"
    )
    args = parser.parse_args()

    rows = []
    for n_files in args.files:
        with tempfile.TemporaryDirectory() as folder:
            rows.append(measure(n_files, Path(folder)))
        print(rows[-1], flush=True)

    header = "files  count anew  count cached  parse first  parse cached  dry run  (one job)"
    print(header)
    for row in rows:
        print(
            f"{row['files']:>5}  {row['count_frames_s']:>9.2f}s"
            f"  {row['count_frames_cached_s']:>11.2f}s"
            f"  {row['parse_first_s']:>10.1f}s  {row['parse_cached_s']:>11.1f}s"
            f"  {row['dry_run_s']:>6.0f}s  {row['dry_run_one_segment_job_s']:>8.0f}s"
        )
    save_record(args.out, rows=rows)


if __name__ == "__main__":
    main()
