"""Despeckle the semantic mask and separate it into particles (the reference method's UECS)."""

import json
import logging
import pickle
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from nanomorph.outputs import (  # noqa: E402
    atomic_path,
    read_mask_png,
    write_labels_tif,
    write_mask_png,
)
from nanomorph.pipeline import AnalysisParameters, postprocess  # noqa: E402

chunk = Path(snakemake.input.chunk)  # noqa: F821
image = snakemake.wildcards.image  # noqa: F821
pixel_size_nm = json.loads(Path(snakemake.input.micrograph).read_text())["pixel_size_nm"]  # noqa: F821
params = AnalysisParameters.from_mapping(snakemake.params.analysis)  # noqa: F821

mask = read_mask_png(chunk / image / "mask.png")
semantic, separation = postprocess(mask, pixel_size_nm, params)
write_mask_png(snakemake.output.segmentation, semantic)  # noqa: F821
write_labels_tif(snakemake.output.labels, separation.labels)  # noqa: F821
logging.info("%s: %d particles, %d excluded", image, len(separation.particles),
             separation.n_excluded)

# The particles' full masks (overlaps included) are needed to measure them, and labels.tif cannot
# hold overlapping particles; this temp file hands them to `measure` within the same run.
payload = {
    "separation": separation,
    "segmenter": json.loads((chunk / "segmenter.json").read_text()),
    "parameters": params,
}
with atomic_path(snakemake.output.separation) as tmp, open(tmp, "wb") as handle:  # noqa: F821
    pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
