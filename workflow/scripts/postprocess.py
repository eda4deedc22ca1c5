"""Despeckle the semantic mask, separate it into particles (UECS) and check their contrast."""

import json
import logging
import pickle
import sys
from pathlib import Path

import numpy as np

from nanomorph.outputs import (
    atomic_path,
    read_mask_png,
    write_labels_tif,
    write_mask_png,
)
from nanomorph.pipeline import (
    AnalysisParameters,
    postprocess,
    read_recorded_image,
    skip_reason,
)
from nanomorph.separate import Separation

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

chunk = Path(smk.input.chunk)
image = smk.wildcards.image
record = json.loads(Path(smk.input.micrograph).read_text())
params = AnalysisParameters.from_mapping(smk.params.analysis)

skipped = skip_reason(record)
if skipped is not None:
    # Skipped at ingest (unreadable_images: skip): no pixels, so nothing to segment or separate.
    semantic = np.zeros((1, 1), bool)
    separation = Separation(particles=[], labels=np.zeros((1, 1), np.uint32))
    logging.warning("%s: skipped (%s)", image, skipped)
else:
    pixel_size_nm = record["pixel_size_nm"]
    mask = read_mask_png(chunk / image / "mask.png")
    # The image is read only for the contrast check, which a declared polarity switches on.
    image_pixels = read_recorded_image(record) if params.polarity != "auto" else None
    semantic, separation = postprocess(mask, pixel_size_nm, params, image=image_pixels)
    logging.info(
        "%s: %d particles, %d excluded", image, len(separation.particles), separation.n_excluded
    )
write_mask_png(smk.output.segmentation, semantic)
write_labels_tif(smk.output.labels, separation.labels)

# The particles' full masks (overlaps included) are needed to measure them, and labels.tif cannot
# hold overlapping particles; this temp file hands them to `measure` within the same run.
payload = {
    "separation": separation,
    "segmenter": json.loads((chunk / "segmenter.json").read_text()),
    "parameters": params,
}
with atomic_path(smk.output.separation) as tmp, open(tmp, "wb") as handle:
    pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
