"""Read one micrograph (or one frame of a stack), check its calibration, store it as TIFF + JSON."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from nanomorph.io import iter_micrographs  # noqa: E402
from nanomorph.outputs import write_image_tif, write_json  # noqa: E402
from nanomorph.pipeline import require_calibration  # noqa: E402

source = snakemake.input[0]  # noqa: F821
frame = snakemake.params.frame  # noqa: F821
wanted = 0 if frame is None else int(frame)
for index, micrograph in enumerate(
    iter_micrographs(source, pixel_size_nm=snakemake.params.pixel_size_nm)  # noqa: F821
):
    if index == wanted:
        break
else:
    raise ValueError(f"{source}: has no frame {wanted}")

pixel_size_nm = require_calibration(micrograph)
logging.info("%s: %s px at %.4g nm/px (%s)", micrograph.name, micrograph.shape, pixel_size_nm,
             micrograph.calibration_source)
write_image_tif(snakemake.output.image, micrograph.image, pixel_size_nm)  # noqa: F821
write_json(snakemake.output.micrograph, {"name": micrograph.name, **micrograph.metadata()})  # noqa: F821
