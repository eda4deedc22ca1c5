"""Semantic segmentation of a batch of images with one segmenter (the model loads once)."""

import json
import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

import tifffile  # noqa: E402
from nanomorph.outputs import write_json, write_mask_png  # noqa: E402
from nanomorph.pipeline import make_segmenter  # noqa: E402

settings = dict(snakemake.params.segmenter)  # noqa: F821
out_dir = Path(snakemake.output[0])  # noqa: F821
segmenter = make_segmenter(
    settings["kind"], model=settings["model"], device=settings["device"],
    polarity=settings["polarity"],
)
network = getattr(segmenter, "network", None)
if settings.get("tile_size") and network is not None and hasattr(network, "tile_size"):
    network.tile_size = int(settings["tile_size"])

images = snakemake.input.images  # noqa: F821
micrographs = snakemake.input.micrographs  # noqa: F821
for name, image_path, meta_path in zip(snakemake.params.names, images, micrographs):  # noqa: F821
    pixel_size_nm = json.loads(Path(meta_path).read_text())["pixel_size_nm"]
    mask = segmenter(tifffile.imread(image_path), pixel_size_nm)
    write_mask_png(out_dir / name / "mask.png", mask)
    logging.info("%s: %.1f %% particle", name, 100 * mask.mean())
# Written last: the chunk is complete only when its description is there.
write_json(out_dir / "segmenter.json", segmenter.describe())
