"""Read one micrograph (or one frame of a stack), check its calibration, store it as TIFF + JSON."""

import logging
import sys

import numpy as np

from nanomorph.io import MicrographError, read_frame
from nanomorph.outputs import write_image_tif, write_json
from nanomorph.pipeline import require_calibration, skipped_image_record

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

source = smk.input[0]
frame = smk.params.frame
wanted = 0 if frame is None else int(frame)
try:
    # Frame k of a series alone: each frame's job reads and converts one frame, not the k before.
    micrograph = read_frame(source, wanted, pixel_size_nm=smk.params.pixel_size_nm)
    pixel_size_nm = require_calibration(micrograph)
except MicrographError as error:
    if smk.params.unreadable != "skip":
        raise
    # unreadable_images: skip. Later steps see the record and write empty outputs; the image's
    # metadata.json and the sample's summary say it was skipped and why.
    logging.warning("skipped: %s", error)
    write_image_tif(smk.output.image, np.zeros((1, 1), np.float32), None)
    write_json(
        smk.output.micrograph,
        skipped_image_record(smk.wildcards.image, source, frame, str(error)),
    )
else:
    logging.info(
        "%s: %s px at %.4g nm/px (%s)",
        micrograph.name,
        micrograph.shape,
        pixel_size_nm,
        micrograph.calibration_source,
    )
    write_image_tif(smk.output.image, micrograph.image, pixel_size_nm)
    write_json(smk.output.micrograph, {"name": micrograph.name, **micrograph.metadata()})
