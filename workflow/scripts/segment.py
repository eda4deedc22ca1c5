"""Semantic segmentation of a batch of images with one segmenter (the model loads once)."""

import json
import logging
import sys
import time
from pathlib import Path

import tifffile

from nanomorph.outputs import write_json, write_mask_png
from nanomorph.pipeline import make_segmenter

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

settings = dict(smk.params.segmenter)
out_dir = Path(smk.output[0])
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
)
network = getattr(segmenter, "network", None)
if settings.get("tile_size") and network is not None and hasattr(network, "tile_size"):
    network.tile_size = int(settings["tile_size"])

images = smk.input.images
micrographs = smk.input.micrographs
total_megapixels = total_seconds = 0.0
for name, image_path, meta_path in zip(smk.params.names, images, micrographs, strict=True):
    pixel_size_nm = json.loads(Path(meta_path).read_text())["pixel_size_nm"]
    image = tifffile.imread(image_path)
    start = time.perf_counter()
    mask = segmenter(image, pixel_size_nm)
    seconds = time.perf_counter() - start
    write_mask_png(out_dir / name / "mask.png", mask)
    # The unit the workflow sizes the job's time limit in (get_segment_runtime).
    if network is not None:
        megapixels = network.network_megapixels(image.shape, pixel_size_nm)
    else:
        megapixels = image.size / 1e6
    total_megapixels += megapixels
    total_seconds += seconds
    logging.info(
        "%s: %.1f %% particle, %.1f s for %.2f megapixels",
        name,
        100 * mask.mean(),
        seconds,
        megapixels,
    )
logging.info(
    "measured %.2f s per megapixel over %d images (the time limit assumed "
    "segment_seconds_per_megapixel = %g)",
    total_seconds / max(total_megapixels, 1e-9),
    len(images),
    smk.params.seconds_per_megapixel,
)
# Written last: the chunk is complete only when its description is there.
write_json(out_dir / "segmenter.json", segmenter.describe())
