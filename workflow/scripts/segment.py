"""Semantic segmentation of a batch of images with one segmenter (the model loads once); masks
made before from the same pixels by the same segmenter come from the cache (nanomorph.batch)."""

import json
import logging
import sys
from functools import partial
from pathlib import Path

from nanomorph.batch import BatchImage, segment_batch
from nanomorph.pipeline import make_segmenter, read_recorded_image, skip_reason

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

settings = dict(smk.params.segmenter)
segmenter = make_segmenter(
    settings["kind"],
    model=settings["model"],
    device=settings["device"],
    precision=settings["precision"],
    polarity=settings["polarity"],
    test_time_flips=settings["test_time_flips"],
    min_peak_probability=settings["min_peak_probability"],
    flatten_support_px=settings["flatten_support_px"],
    particle_diameter_nm=settings["particle_diameter_nm"],
    tile_size=settings["tile_size"],
)
network = getattr(segmenter, "network", None)

images = []
for name, meta_path in zip(smk.params.names, smk.input.micrographs, strict=True):
    record = json.loads(Path(meta_path).read_text())
    # An image ingest skipped (unreadable_images: skip) has no mask; postprocess knows why.
    if skip_reason(record) is None:
        # Read from its own file when the batch reaches it, as ingest recorded it.
        # read_recorded_image checks the pixels against the record's checksum, which then
        # serves as the mask cache's key without hashing the image a second time.
        images.append(
            BatchImage(
                name,
                partial(read_recorded_image, record),
                record["pixel_size_nm"],
                record["pixels_sha256"],
            )
        )
report = segment_batch(
    segmenter,
    images,
    smk.output[0],
    cache_dir=smk.params.mask_cache,
    # The unit the workflow sizes the job's time limit in (get_segment_runtime).
    megapixels=network.network_megapixels if network is not None else None,
)
if report.from_cache:
    logging.info(
        "%d of %d images' masks taken from the cache (same pixels, pixel size and segmenter)",
        report.from_cache,
        len(images),
    )
if report.seconds_per_megapixel is not None:
    logging.info(
        "measured %.2f s per megapixel over %d images (the time limit assumed "
        "segment_seconds_per_megapixel = %g)",
        report.seconds_per_megapixel,
        report.segmented,
        smk.params.seconds_per_megapixel,
    )
