"""JPEG copies of some of a sample's overlays for the HTML report, one per chosen image."""

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from nanomorph.plots import save_report_image

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

output = Path(smk.output[0])
output.parent.mkdir(parents=True, exist_ok=True)
# Filled under a temporary name and renamed whole: an interrupted job leaves no partial folder.
staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
umask = os.umask(0)
os.umask(umask)
os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would hide the folder from a shared group
try:
    for name, overlay in zip(smk.params.names, smk.input, strict=True):
        # A frame's name holds a slash (<stem>/frame_NNNN): its copy goes in a subfolder.
        save_report_image(overlay, staging / f"{name}.jpg")
    shutil.rmtree(output, ignore_errors=True)
    os.replace(staging, output)
except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
logging.info("%d of the sample's overlays copied for the report", len(smk.params.names))
