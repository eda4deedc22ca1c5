"""Read one micrograph (or one frame of a stack), check its calibration, store it as TIFF + JSON."""

import logging
import sys

from nanomorph.io import read_frame
from nanomorph.outputs import write_image_tif, write_json
from nanomorph.pipeline import require_calibration

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

source = smk.input[0]
frame = smk.params.frame
wanted = 0 if frame is None else int(frame)
# Frame k of a series alone: each frame's job reads and converts one frame, not the k before it.
micrograph = read_frame(source, wanted, pixel_size_nm=smk.params.pixel_size_nm)

pixel_size_nm = require_calibration(micrograph)
logging.info(
    "%s: %s px at %.4g nm/px (%s)",
    micrograph.name,
    micrograph.shape,
    pixel_size_nm,
    micrograph.calibration_source,
)
write_image_tif(smk.output.image, micrograph.image, pixel_size_nm)
write_json(smk.output.micrograph, {"name": micrograph.name, **micrograph.metadata()})
