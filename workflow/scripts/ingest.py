"""Read one micrograph (or one frame of a stack), check its calibration, record it as JSON.

No copy of the pixels is kept: later steps read them again from the source file
(nanomorph.pipeline.read_recorded_image), checked against the record's checksum.
"""

import logging
import sys

from nanomorph.io import MicrographError, read_frame
from nanomorph.outputs import write_json
from nanomorph.pipeline import (
    ingested_image_record,
    require_calibration,
    skipped_image_record,
)

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
    write_json(
        smk.output[0],
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
    write_json(smk.output[0], ingested_image_record(micrograph))
