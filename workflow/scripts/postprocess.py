"""Despeckle the semantic mask and separate it into particles (the reference method's UECS)."""

import json
import logging
import pickle
import sys
from pathlib import Path

from nanomorph.outputs import (
    atomic_path,
    read_mask_png,
    write_labels_tif,
    write_mask_png,
)
from nanomorph.pipeline import AnalysisParameters, postprocess

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

chunk = Path(smk.input.chunk)
image = smk.wildcards.image
pixel_size_nm = json.loads(Path(smk.input.micrograph).read_text())["pixel_size_nm"]
params = AnalysisParameters.from_mapping(smk.params.analysis)

mask = read_mask_png(chunk / image / "mask.png")
semantic, separation = postprocess(mask, pixel_size_nm, params)
write_mask_png(smk.output.segmentation, semantic)
write_labels_tif(smk.output.labels, separation.labels)
logging.info(
    "%s: %d particles, %d excluded", image, len(separation.particles), separation.n_excluded
)

# The particles' full masks (overlaps included) are needed to measure them, and labels.tif cannot
# hold overlapping particles; this temp file hands them to `measure` within the same run.
payload = {
    "separation": separation,
    "segmenter": json.loads((chunk / "segmenter.json").read_text()),
    "parameters": params,
}
with atomic_path(smk.output.separation) as tmp, open(tmp, "wb") as handle:
    pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
