"""JPEG copies of some of a sample's overlays for the HTML report, one per chosen image."""

import logging
import sys

from nanomorph.outputs import atomic_directory
from nanomorph.plots import save_report_image

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

# Filled under a temporary name and renamed whole: an interrupted job leaves no partial folder.
with atomic_directory(smk.output[0]) as folder:
    for name, overlay in zip(smk.params.names, smk.input, strict=True):
        # A frame's name holds a slash (<stem>/frame_NNNN): its copy goes in a subfolder.
        save_report_image(overlay, folder / f"{name}.jpg")
logging.info("%d of the sample's overlays copied for the report", len(smk.params.names))
