"""Publication figure: micrograph, semantic mask, separated instances and measured outlines."""

import itertools
import sys

from nanomorph.io import iter_micrographs
from nanomorph.outputs import read_labels_tif, read_mask_png, read_table
from nanomorph.plots import save_segmentation_panel

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")

# Read from the source file (as ingest does), not from ingest's temporary copy, so that redrawing
# the figure never re-runs the analysis.
frame = smk.params.frame or 0
micrographs = iter_micrographs(smk.input.source, smk.params.pixel_size_nm)
micrograph = next(itertools.islice(micrographs, frame, None))
# Writes the .png and the .pdf next to each other.
save_segmentation_panel(
    smk.output.png,
    micrograph.image,
    read_mask_png(smk.input.segmentation),
    read_labels_tif(smk.input.labels),
    micrograph.pixel_size_nm,
    particles=read_table(smk.input.particles),
    formats=("png", "pdf"),
)
