"""Time limits and memory for the workflow's jobs, from the megapixels each job works on.

A cluster kills a job at its time limit (Snakemake's ``runtime`` resource, SLURM's ``--time``), and
in a group job the members' limits add up: a fixed limit either kills samples of large images or
asks for more hours than many partitions allow. So each job's limit is the time it takes to
start plus its megapixels (for reading a file: its megabytes per frame) at a rate measured with a
margin, doubled on each retry.
"""

from __future__ import annotations

import math

# Starting Python and torch and loading the model on a busy node.
SEGMENT_STARTUP_MIN = 5
# Starting Python with numpy, scikit-image and pandas for one image.
PER_IMAGE_STARTUP_MIN = 2
# Six times or more the slowest rates measured on crowded 1-16 megapixel masks on two CPUs
# (benchmarks/bench_per_image_steps.py; README, Benchmarks: at most 3.1 / 0.69 / 0.24 s).
PER_IMAGE_SECONDS_PER_MEGAPIXEL = {"postprocess": 20.0, "measure": 5.0, "overlay": 5.0}
# Reading a micrograph, before its pixels are known, goes by the megabytes of file per frame:
# eight times the slowest rate measured (0.062 s/MB, a 4 MB .dm4 read and written as TIFF).
INGEST_SECONDS_PER_MEGABYTE = 0.5


def time_limit_minutes(
    megapixels: float, seconds_per_megapixel: float, startup_minutes: float, attempt: int = 1
) -> int:
    """Whole minutes for a job: start-up plus its megapixels at the rate, doubled per retry."""
    if not megapixels >= 0:
        raise ValueError(f"megapixels must be 0 or more, got {megapixels}")
    if not seconds_per_megapixel > 0:
        raise ValueError(f"seconds per megapixel must be positive, got {seconds_per_megapixel}")
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    minutes = startup_minutes + megapixels * seconds_per_megapixel / 60
    return math.ceil(minutes) * 2 ** (attempt - 1)


# Memory of a per-image job: what it declared before (enough for the images most cameras give)
# or, for larger images (montages, stitched fields), start-up plus its megapixels at 40 MB each.
# Measured: postprocess, measure and overlay in one process on crowded masks peak at 334 / 641 /
# 2,011 MB for 4.2 / 16.8 / 67 megapixels (inputs included), 30 MB per megapixel or less.
PER_IMAGE_BASE_MB = 1000
PER_IMAGE_MB_PER_MEGAPIXEL = 40
PER_IMAGE_MIN_MB = {"ingest": 2000, "postprocess": 4000, "measure": 2000, "overlay": 2000}
# Reading goes by megabytes of file per frame: a frame converted to float32 and its copies take
# up to 16 times an 8-bit frame's bytes.
INGEST_MB_PER_FILE_MEGABYTE = 16


def memory_mb(
    amount: float, mb_per_unit: float, base_mb: float, minimum_mb: float, attempt: int = 1
) -> int:
    """Whole megabytes for a job: start-up plus its amount (megapixels, or megabytes of file) at
    the rate, never under ``minimum_mb``, doubled per retry (a job killed for memory is rerun with
    more)."""
    if not amount >= 0:
        raise ValueError(f"amount must be 0 or more, got {amount}")
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    return math.ceil(max(minimum_mb, base_mb + amount * mb_per_unit)) * 2 ** (attempt - 1)


# Segmentation images one at a time after the model is loaded: measured (CPU, float32, one
# pass) 0.9 GB with the model, peaks of 1.5 / 1.7 / 2.7 GB for 4.2 / 16.8 / 67 megapixels,
# 20 MB per megapixel. 8 GB as before unless the largest image needs more at twice that.
SEGMENT_BASE_MB = 2000
SEGMENT_MB_PER_MEGAPIXEL = 40
SEGMENT_MIN_MB = 8000
