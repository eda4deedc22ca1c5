"""Semantic segmentation of a batch of images with one segmenter (the model loads once)."""

import json
import logging
import sys
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
for name, image_path, meta_path in zip(smk.params.names, images, micrographs, strict=True):
    pixel_size_nm = json.loads(Path(meta_path).read_text())["pixel_size_nm"]
    mask = segmenter(tifffile.imread(image_path), pixel_size_nm)
    write_mask_png(out_dir / name / "mask.png", mask)
    logging.info("%s: %.1f %% particle", name, 100 * mask.mean())
# Written last: the chunk is complete only when its description is there.
write_json(out_dir / "segmenter.json", segmenter.describe())
